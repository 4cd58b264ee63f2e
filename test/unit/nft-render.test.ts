import t from 'tap';
import { isUnsafeValueError, renderElementChanges, renderRemoval, renderTable } from '../../src/adapters/nftables/render.js';
import type { Decision } from '../../src/domain/decision.js';
import {
  diffElements, planAll, planContainer, type FirewallElements, type FirewallPlan,
} from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import type { Cidr } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const block = (text: string): Cidr => parseCidr(text)!;
const NONE: Omit<FirewallPlan, 'defaultDeny'> = { ports: [], allows: [], endpoints: [], bridges: [], routed4: [], routed6: [], otherBridges: [] };

/** Audit mode's per-source counters: declared in every table, filled only by packets. */
const AUDIT_SETS = `\tset audit4 {
\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service
\t\tsize 65536
\t\tflags dynamic, timeout
\t\ttimeout 1h
\t\tcounter
\t}
\tset audit6 {
\t\ttype ipv6_addr . ipv6_addr . inet_proto . inet_service
\t\tsize 65536
\t\tflags dynamic, timeout
\t\ttimeout 1h
\t\tcounter
\t}
`;

const SETS_EMPTY = `\tset ports4 {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tset ports6 {
\t\ttype ipv6_addr . inet_proto . inet_service
\t\tflags interval
\t}
\tset allow4 {
\t\ttype ipv4_addr . inet_proto . inet_service . ipv4_addr
\t\tflags interval
\t}
\tset allow6 {
\t\ttype ipv6_addr . inet_proto . inet_service . ipv6_addr
\t\tflags interval
\t}
\tset endpoints4 {
\t\ttype ipv4_addr . inet_proto . inet_service . inet_service
\t}
\tset endpoints6 {
\t\ttype ipv6_addr . inet_proto . inet_service . inet_service
\t}
\tset bridges {
\t\ttype ifname
\t}
\tset routed4 {
\t\ttype ifname
\t}
\tset routed6 {
\t\ttype ifname
\t}
\tset otherBridges {
\t\ttype ifname
\t}
${AUDIT_SETS}`;

const CHAINS = (forward: string) => `\tchain prerouting {
\t\ttype filter hook prerouting priority -150; policy accept;
\t\tiif != "lo" fib daddr type local ip daddr . meta l4proto . th dport @ports4 jump decide4
\t\tiif != "lo" fib daddr type local ip6 daddr . meta l4proto . th dport @ports6 jump decide6
\t}
\tchain decide4 {
\t\tip daddr . meta l4proto . th dport . ip saddr @allow4 return
\t\tcounter drop
\t}
\tchain decide6 {
\t\tip6 daddr . meta l4proto . th dport . ip6 saddr @allow6 return
\t\tcounter drop
\t}
\tchain forward {
\t\ttype filter hook forward priority -1; policy accept;
\t\tct state new oifname @bridges goto bridged
\t\tct state new oifname "br-*" goto bridged
\t\tct state new meta oifkind "bridge" oifname != @otherBridges goto bridged
\t}
\tchain bridged {
${forward}\t\tct status dnat return
\t\tiifname @bridges return
\t\tiifname "br-*" return
\t\tmeta iifkind "bridge" iifname != @otherBridges return
\t\tmeta nfproto ipv4 oifname @routed4 return
\t\tmeta nfproto ipv6 oifname @routed6 return
\t\tcounter drop
\t}
\tchain published {
\t\tmeta l4proto tcp ip daddr . meta l4proto . th dport . ct original proto-dst @endpoints4 return
\t\tmeta l4proto tcp ip6 daddr . meta l4proto . th dport . ct original proto-dst @endpoints6 return
\t\tmeta l4proto udp ip daddr . meta l4proto . th dport . ct original proto-dst @endpoints4 return
\t\tmeta l4proto udp ip6 daddr . meta l4proto . th dport . ct original proto-dst @endpoints6 return
\t\tmeta l4proto sctp ip daddr . meta l4proto . th dport . ct original proto-dst @endpoints4 return
\t\tmeta l4proto sctp ip6 daddr . meta l4proto . th dport . ct original proto-dst @endpoints6 return
\t\tcounter drop
\t}
`;

const BASELINE = `\t\tct status dnat jump published
`;

/** A set of interface names as rendered: one element a line. */
const interfaceSet = (name: string, names: readonly string[]): string =>
  `\tset ${name} {\n\t\ttype ifname\n${names.length === 0 ? '' : `\t\telements = {\n${names.map((n) => `\t\t\t"${n}"`).join(',\n')}\n\t\t}\n`}\t}\n`;

const HEADER = 'table inet dockwarden {}\ndelete table inet dockwarden\ntable inet dockwarden {\n';

// Two containers, IPv4 and IPv6, a specific host address, udp, and a port nobody may reach.
const decision = (containerId: string, ports: Decision['ports']): Pick<Decision, 'containerId' | 'ports'> => ({ containerId, ports });
const web = planContainer(
  makeFacts({ id: 'w', networks: [{ name: 'bridge', networkId: 'n1', ipv4: '172.17.0.2', ipv6: '2001:db8:17::2', mac: '' }] }),
  decision('w', [
    { port: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 443, containerPort: 8443 }, rule: 'web', allow: 'any', narrowedByLabel: false, labelError: null },
    { port: { proto: 'tcp', hostIp: '::', hostPort: 443, containerPort: 8443 }, rule: 'web', allow: 'any', narrowedByLabel: false, labelError: null },
  ]),
);
const dns = planContainer(
  makeFacts({ id: 'd', networks: [{ name: 'br', networkId: 'n2', ipv4: '172.18.0.3', ipv6: '', mac: '' }] }),
  decision('d', [
    { port: { proto: 'udp', hostIp: '192.0.2.2', hostPort: 53, containerPort: 53 }, rule: 'dns', allow: [block('198.51.100.0/24'), block('2001:db8:1::/48')], narrowedByLabel: false, labelError: null },
    { port: { proto: 'sctp', hostIp: '2001:db8::2', hostPort: 9, containerPort: 9 }, rule: null, allow: [], narrowedByLabel: false, labelError: null },
  ]),
);
const PLAN = planAll([web, dns], { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'] });

t.test('an empty table, ports.default allow: sets declared, no baseline', async (t) => {
  t.equal(renderTable({ ...NONE, defaultDeny: false }), `${HEADER}${SETS_EMPTY}${CHAINS('')}}\n`);
});

t.test('audit mode: every drop is a counted return, and new connections at a published port are counted by source', async (t) => {
  const audit = renderTable({ ...NONE, defaultDeny: true, audit: true });
  const expected = CHAINS(BASELINE).replaceAll('counter drop', 'counter return')
    .replace('@allow4 return\n', '@allow4 return\n\t\tct state new update @audit4 { ip saddr . ip daddr . meta l4proto . th dport }\n')
    .replace('@allow6 return\n', '@allow6 return\n\t\tct state new update @audit6 { ip6 saddr . ip6 daddr . meta l4proto . th dport }\n');
  t.equal(audit, `${HEADER}${SETS_EMPTY}${expected}}\n`);
  t.notMatch(audit, /drop/, 'nothing is dropped');
});

t.test('an empty table, ports.default deny: the fail-closed baseline', async (t) => {
  t.equal(renderTable({ ...NONE, defaultDeny: true }), `${HEADER}${SETS_EMPTY}${CHAINS(BASELINE)}}\n`);
});

t.test('a full table, IPv4 and IPv6', async (t) => {
  t.equal(renderTable({ ...PLAN, routed4: ['br-0123456789ab'], otherBridges: ['lxcbr0', 'virbr0'] }), `${HEADER}\tset ports4 {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\tflags interval
\t\telements = {
\t\t\t0.0.0.0/0 . tcp . 443,
\t\t\t192.0.2.2/32 . udp . 53
\t\t}
\t}
\tset ports6 {
\t\ttype ipv6_addr . inet_proto . inet_service
\t\tflags interval
\t\telements = {
\t\t\t2001:db8::2/128 . sctp . 9,
\t\t\t::/0 . tcp . 443
\t\t}
\t}
\tset allow4 {
\t\ttype ipv4_addr . inet_proto . inet_service . ipv4_addr
\t\tflags interval
\t\telements = {
\t\t\t0.0.0.0/0 . tcp . 443 . 0.0.0.0/0,
\t\t\t192.0.2.2/32 . udp . 53 . 198.51.100.0/24
\t\t}
\t}
\tset allow6 {
\t\ttype ipv6_addr . inet_proto . inet_service . ipv6_addr
\t\tflags interval
\t\telements = {
\t\t\t::/0 . tcp . 443 . ::/0
\t\t}
\t}
\tset endpoints4 {
\t\ttype ipv4_addr . inet_proto . inet_service . inet_service
\t\telements = {
\t\t\t172.17.0.2 . tcp . 8443 . 443,
\t\t\t172.18.0.3 . udp . 53 . 53
\t\t}
\t}
\tset endpoints6 {
\t\ttype ipv6_addr . inet_proto . inet_service . inet_service
\t\telements = {
\t\t\t2001:db8:17::2 . tcp . 8443 . 443
\t\t}
\t}
${interfaceSet('bridges', ['br-0123456789ab', 'docker0'])}${interfaceSet('routed4', ['br-0123456789ab'])}${interfaceSet('routed6', [])}${interfaceSet('otherBridges', ['lxcbr0', 'virbr0'])}${AUDIT_SETS}${CHAINS(BASELINE)}}
`);
});

t.test('element changes: one transaction, deletions first', async (t) => {
  const before = planAll([web], { defaultDeny: true, bridges: ['docker0'] });
  const after = planAll([dns], { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'] });
  t.equal(renderElementChanges(diffElements(before, after)), `delete element inet dockwarden ports4 {
\t0.0.0.0/0 . tcp . 443
}
delete element inet dockwarden ports6 {
\t::/0 . tcp . 443
}
delete element inet dockwarden allow4 {
\t0.0.0.0/0 . tcp . 443 . 0.0.0.0/0
}
delete element inet dockwarden allow6 {
\t::/0 . tcp . 443 . ::/0
}
delete element inet dockwarden endpoints4 {
\t172.17.0.2 . tcp . 8443 . 443
}
delete element inet dockwarden endpoints6 {
\t2001:db8:17::2 . tcp . 8443 . 443
}
add element inet dockwarden ports4 {
\t192.0.2.2/32 . udp . 53
}
add element inet dockwarden ports6 {
\t2001:db8::2/128 . sctp . 9
}
add element inet dockwarden allow4 {
\t192.0.2.2/32 . udp . 53 . 198.51.100.0/24
}
add element inet dockwarden endpoints4 {
\t172.18.0.3 . udp . 53 . 53
}
add element inet dockwarden bridges {
\t"br-0123456789ab"
}
`);
  t.equal(renderElementChanges(diffElements(PLAN, PLAN)), '', 'no change, no script');
});

t.test('removal', async (t) => {
  t.equal(renderRemoval(), 'table inet dockwarden {}\ndelete table inet dockwarden\n');
});

t.test('names, labels and images never reach the script', async (t) => {
  const hostile = '"; flush ruleset; #';
  const facts = makeFacts({
    id: 'x', name: `web${hostile}`, labels: { [`dockwarden${hostile}`]: hostile },
    image: { reference: `evil${hostile}`, id: 'sha256:1', repoTags: [], repoDigests: [] },
  });
  const elements = planContainer(facts, decision('x', [
    { port: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 80, containerPort: 80 }, rule: hostile, allow: 'any', narrowedByLabel: true, labelError: null },
  ]));
  const script = renderTable(planAll([elements], { defaultDeny: true, bridges: [] }));
  t.notMatch(script, /flush|evil|web"|dockwarden"/);
});

t.test('values that are not canonical and typed are refused before any text is produced', async (t) => {
  const port = PLAN.ports[0]!;
  const allow = PLAN.allows[0]!;
  const endpoint = PLAN.endpoints[0]!;
  const bad = (name: string, elements: Partial<FirewallElements>, message: RegExp) => {
    const plan: FirewallPlan = { ...NONE, defaultDeny: true, ...elements };
    for (const [how, render] of [
      ['renderTable', () => renderTable(plan)],
      ['renderElementChanges', () => renderElementChanges({ add: plan, delete: NONE })],
    ] as const) {
      t.throws(render, message, `${name}: ${how}`);
      try {
        render();
      } catch (err) {
        t.ok(isUnsafeValueError(err), `${name}: ${how} throws UnsafeValueError`);
      }
    }
  };
  const cidr = (fields: Partial<Cidr>): Cidr => ({ ...block('198.51.100.0/24'), ...fields });

  bad('quote in an interface name', { bridges: ['docker0" ; flush ruleset'] }, /refusing to render interface name/);
  bad('interface name over 15 characters', { bridges: ['br-0123456789abc'] }, /interface name "br-0123456789abc"/);
  bad('empty interface name', { bridges: [''] }, /interface name ""/);
  bad('interface name with a space', { bridges: ['br 0'] }, /interface name/);
  // Plan-wide lists, which only a whole table carries.
  t.throws(() => renderTable({ ...NONE, defaultDeny: true, routed6: ['br0" ; flush ruleset'] }), /refusing to render interface name/, 'quote in a routed bridge');
  t.throws(() => renderTable({ ...NONE, defaultDeny: true, otherBridges: ['virbr0 }'] }), /refusing to render interface name/, 'brace in an other bridge');
  for (const value of [0, 65536, 1.5, Number.NaN]) bad(`port ${value}`, { ports: [{ ...port, port: value }] }, /refusing to render port/);
  bad('protocol outside the enum', { ports: [{ ...port, proto: 'tcp . 1' as never }] }, /refusing to render protocol "tcp \. 1"/);
  bad('host bits set', { allows: [{ ...allow, source: cidr({ address: '198.51.100.7', text: '198.51.100.7/24' }) }] }, /IPv4 block/);
  bad('text and address disagree', { allows: [{ ...allow, source: cidr({ text: '0.0.0.0/0' }) }] }, /IPv4 block/);
  bad('injection in a block', { allows: [{ ...allow, source: cidr({ address: '198.51.100.0 } ; flush ruleset', text: '198.51.100.0 } ; flush ruleset/24' }) }] }, /IPv4 block/);
  bad('IPv6 source in allow4', { allows: [{ ...allow, source: block('2001:db8::/32') }] }, /IPv4 block/);
  bad('IPv4 block claiming family 6', { ports: [{ ...port, hostAddr: cidr({ family: 6 }) }] }, /IPv6 block/);
  bad('non-canonical IPv6 address', { endpoints: [{ ...endpoint, addr: { family: 6, text: '2001:DB8::1' } }] }, /IPv6 address/);
  bad('address with a prefix', { endpoints: [{ ...endpoint, addr: { family: 4, text: '172.17.0.0/16' } }] }, /IPv4 address/);
  bad('family 5', { endpoints: [{ ...endpoint, addr: { family: 5 as never, text: '172.17.0.2' } }] }, /address family 5/);
});
