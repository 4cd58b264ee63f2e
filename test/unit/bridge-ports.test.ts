import t from 'tap';
import { renderBridgeChanges, renderBridgeTable } from '../../src/adapters/nftables/bridge-render.js';
import { linkLocalOf, parseMac, planPorts, type BridgePort } from '../../src/domain/bridge/ports.js';
import { parseAddress } from '../../src/domain/firewall/plan.js';
import { makeFacts } from '../helpers/facts.js';

const ON = { antiSpoofing: true, exceptions: [] };
const MAC = '02:42:ac:11:00:02';
const VETHS = new Map([[MAC, 'veth1234567']]);
const addr = (text: string) => parseAddress(text)!;

t.test('parseMac: canonical lower case; multicast, zero and malformed are refused', async (t) => {
  t.equal(parseMac('02:42:AC:11:00:02'), MAC);
  for (const bad of ['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00', '02:42:ac:11:00', '02-42-ac-11-00-02', '02:42:ac:11:00:0g', '']) t.equal(parseMac(bad), null, bad);
});

t.test('linkLocalOf: the modified EUI-64 address Linux gives the interface', async (t) => {
  // `ip -6 addr` of an interface with MAC 02:42:0a:d5:00:02 shows fe80::42:aff:fed5:2.
  t.equal(linkLocalOf('02:42:0a:d5:00:02').text, 'fe80::42:aff:fed5:2');
  t.equal(linkLocalOf('52:54:00:12:34:56').text, 'fe80::5054:ff:fe12:3456');
});

t.test('planPorts: one port per bridge attachment, with its own MAC and addresses', async (t) => {
  const facts = makeFacts({
    networks: [
      { name: 'bridge', networkId: 'n1', ipv4: '172.17.0.2', ipv6: 'fd00::2', mac: MAC },
      { name: 'macvlan', networkId: 'n2', ipv4: '10.9.0.2', ipv6: '', mac: '02:42:0a:09:00:02' },
    ],
  });
  t.same(planPorts(facts, ON, VETHS), [{
    ifname: 'veth1234567', containerId: facts.id, mac: MAC, ipv4: [addr('172.17.0.2')], ipv6: [addr('fd00::2'), linkLocalOf(MAC)],
  }], 'the attachment without a bridge veth (macvlan) is not a port');
});

t.test('planPorts: nothing when off, not running, or the network is an exception', async (t) => {
  const facts = makeFacts();
  t.same(planPorts(facts, { antiSpoofing: false, exceptions: [] }, VETHS), []);
  t.same(planPorts(makeFacts({ state: { ...facts.state, running: false } }), ON, VETHS), []);
  t.same(planPorts(facts, { antiSpoofing: true, exceptions: ['bridge'] }, VETHS), []);
});

t.test('planPorts: unusable values from Docker are errors, never rendered', async (t) => {
  const net = makeFacts().networks[0]!;
  for (const bad of [{ mac: '01:00:5e:00:00:01' }, { ipv4: 'fd00::2' }, { ipv6: '10.0.0.1' }, { ipv4: '10.0.0.0/24' }]) {
    t.throws(() => planPorts(makeFacts({ networks: [{ ...net, ...bad }] }), ON, VETHS), { name: 'BridgeInputError' }, JSON.stringify(bad));
  }
});

t.test('planPorts: a bridge port with a MAC no attachment has (changed inside the container) is an error', async (t) => {
  t.throws(() => planPorts(makeFacts(), ON, new Map([...VETHS, ['02:42:ac:11:00:99', 'veth9']])), { name: 'BridgeInputError' });
});

const PORT: BridgePort = { ifname: 'veth1', containerId: 'c', mac: MAC, ipv4: [addr('172.17.0.2')], ipv6: [addr('fd00::2')] };

t.test('renderBridgeTable: constant rules, the port only in set elements', async (t) => {
  const empty = renderBridgeTable([]);
  const full = renderBridgeTable([PORT]);
  t.match(empty, /^table bridge dockwarden_bridge \{\}\ndelete table bridge dockwarden_bridge\ntable bridge dockwarden_bridge \{\n/);
  t.equal(full.replace(/\t\telements = .*\n/g, ''), empty, 'only element lines differ');
  for (const line of [
    'set ports {\n\t\ttype ifname\n\t\telements = { "veth1" }',
    'elements = { "veth1" . 02:42:ac:11:00:02 }',
    'elements = { "veth1" . 02:42:ac:11:00:02 . 0.0.0.0, "veth1" . 02:42:ac:11:00:02 . 172.17.0.2 }',
    'elements = { "veth1" . 172.17.0.2 }',
    'elements = { "veth1" . fd00::2 }',
    'elements = { "veth1" . 0xfd000000000000000000000000000002 }',
    'type filter hook prerouting priority -200; policy accept;',
  ]) t.ok(full.includes(line), line);
});

t.test('renderBridgeChanges: deletions, then additions, in one script', async (t) => {
  t.equal(renderBridgeChanges([], []), '');
  const script = renderBridgeChanges([PORT], [{ ...PORT, ifname: 'veth2', ipv6: [] }]);
  const lines = script.trim().split('\n');
  const firstAdd = lines.findIndex((l) => l.startsWith('add element'));
  t.ok(firstAdd > 0 && lines.slice(0, firstAdd).every((l) => l.startsWith('delete element bridge dockwarden_bridge ')), 'deletions first');
  t.ok(lines.slice(firstAdd).every((l) => l.startsWith('add element bridge dockwarden_bridge ')), 'then additions');
  t.notOk(lines.slice(firstAdd).some((l) => / (addrs6|targets) /.test(l)), 'no empty element lists');
});

t.test('hostile values can only fail to render', async (t) => {
  for (const bad of [
    { ifname: 'veth1" }; flush ruleset; {"' },
    { ifname: '' },
    { mac: '02:42:ac:11:00:02 } ; flush ruleset' },
    { mac: '02:42:AC:11:00:02' },
    { ipv4: [{ family: 4 as const, text: '1.2.3.4 } ; flush ruleset' }] },
    { ipv6: [{ family: 6 as const, text: '::ffff:1.2.3.4' }] },
  ]) t.throws(() => renderBridgeTable([{ ...PORT, ...bad }]), { name: 'UnsafeValueError' }, JSON.stringify(bad));
});
