import t from 'tap';
import { parsePortRange } from '../../src/domain/net/port-range.js';

t.test('a port or an inclusive range, with its protocol', async (t) => {
  t.same(parsePortRange('443/tcp'), { proto: 'tcp', from: 443, to: 443 });
  t.same(parsePortRange('8000-8100/udp'), { proto: 'udp', from: 8000, to: 8100 });
  t.same(parsePortRange('53/sctp'), { proto: 'sctp', from: 53, to: 53 });
  t.same(parsePortRange('1-65535/tcp'), { proto: 'tcp', from: 1, to: 65535 });
  t.same(parsePortRange('80-80/tcp'), { proto: 'tcp', from: 80, to: 80 });
});

t.test('rejects anything else', async (t) => {
  const rejected = [
    '443', '8000-8100', // the protocol is required
    '443/TCP', '443/tcpx', '443/icmp', '443/', '/tcp', '',
    '0/tcp', '65536/tcp', '1-65536/udp', '99999/tcp', '0443/tcp',
    '8100-8000/udp', // from > to
    '443 /tcp', ' 443/tcp', '443/tcp ', '+443/tcp', '-1/tcp', '1e3/tcp', '443.0/tcp', '80-/tcp', '-80/tcp', '80--90/tcp',
  ];
  for (const input of rejected) t.equal(parsePortRange(input), undefined, JSON.stringify(input));
});
