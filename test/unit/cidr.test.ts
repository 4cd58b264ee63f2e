import t from 'tap';
import { cidrContains, parseCidr } from '../../src/domain/net/cidr.js';
import type { Cidr } from '../../src/domain/policy/model.js';

const text = (input: string) => parseCidr(input)?.text;
const cidr = (input: string): Cidr => {
  const parsed = parseCidr(input);
  if (!parsed) throw new Error(`test fixture ${input} does not parse`);
  return parsed;
};

t.test('bare addresses are single-address blocks', async (t) => {
  t.same(parseCidr('198.51.100.7'), { family: 4, address: '198.51.100.7', prefix: 32, text: '198.51.100.7/32' });
  t.same(parseCidr('2001:db8::1'), { family: 6, address: '2001:db8::1', prefix: 128, text: '2001:db8::1/128' });
});

t.test('canonical form: host bits cleared, IPv6 short and lower-case', async (t) => {
  t.equal(text('198.51.100.77/24'), '198.51.100.0/24');
  t.equal(text('198.51.100.77/25'), '198.51.100.0/25');
  t.equal(text('198.51.100.255/31'), '198.51.100.254/31');
  t.equal(text('10.1.2.3/0'), '0.0.0.0/0');
  t.equal(text('2001:DB8:0:0:1::FFFF/48'), '2001:db8::/48');
  t.equal(text('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1/128');
  t.equal(text('2001:db8:1:ff00::/57'), '2001:db8:1:ff00::/57');
  t.equal(text('::/0'), '::/0');
  t.equal(text('0.0.0.0/0'), '0.0.0.0/0');
});

t.test('rejects what is not one unambiguous address or block', async (t) => {
  const rejected = [
    '', '/24', '198.51.100.0/', '198.51.100.300', '10.0.0.300/8', '198.51.100', '10.1', '0x0a.0.0.1',
    '010.0.0.1', '198.51.100.07', // leading zeros: octal to inet_aton, decimal to a reader
    '198.51.100.0/33', '2001:db8::/129', '198.51.100.0/024', '198.51.100.0/-1', '198.51.100.0/+8', '198.51.100.0/8/8',
    'fe80::1%eth0', 'fe80::1%eth0/64', // zone ids
    '::ffff:198.51.100.7', '::ffff:c633:6407', '::ffff:0:0/96', // IPv4-mapped: the firewall sees these as IPv4
    '::198.51.100.7', // ipaddr.js misreads embedded dotted quads
    ' 198.51.100.7', '198.51.100.7 ', '2001:db8:::1', '2001:db8::g', 'localhost', 'any',
  ];
  for (const input of rejected) t.equal(parseCidr(input), undefined, JSON.stringify(input));
});

t.test('a block that only overlaps the IPv4-mapped range is an ordinary IPv6 block', async (t) => {
  t.equal(text('::ffff:0:0/95'), '::fffe:0:0/95');
});

t.test('cidrContains: inner entirely inside outer, same family', async (t) => {
  t.ok(cidrContains(cidr('198.51.100.0/24'), cidr('198.51.100.0/28')));
  t.ok(cidrContains(cidr('198.51.100.0/24'), cidr('198.51.100.7')));
  t.ok(cidrContains(cidr('198.51.100.0/24'), cidr('198.51.100.0/24')), 'a block contains itself');
  t.ok(cidrContains(cidr('0.0.0.0/0'), cidr('198.51.100.7')));
  t.notOk(cidrContains(cidr('198.51.100.0/28'), cidr('198.51.100.0/24')), 'a larger block is not inside');
  t.notOk(cidrContains(cidr('198.51.100.0/28'), cidr('198.51.100.16/28')), 'a disjoint block');
  t.notOk(cidrContains(cidr('198.51.100.0/25'), cidr('198.51.100.128/26')), 'the other half');
  t.ok(cidrContains(cidr('2001:db8::/32'), cidr('2001:db8:1::/48')));
  t.notOk(cidrContains(cidr('2001:db8:1::/48'), cidr('2001:db8::/32')));
  t.notOk(cidrContains(cidr('::/0'), cidr('198.51.100.7')), 'families never contain each other');
  t.notOk(cidrContains(cidr('0.0.0.0/0'), cidr('2001:db8::1')));
});
