import t from 'tap';
import { isUnsafeValueError, renderElementChanges, renderRemoval, renderTable, renderTableAndGuard } from '../../src/adapters/nftables/render.js';
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

/** A set as rendered: one element a line. */
const set = (name: string, type: string, elements: readonly string[] = [], interval = false): string =>
  `\tset ${name} {\n\t\ttype ${type}\n${interval ? '\t\tflags interval\n' : ''}${elements.length === 0 ? '' : `\t\telements = {\n${elements.map((e) => `\t\t\t${e}`).join(',\n')}\n\t\t}\n`}\t}\n`;
const SHARDS = Array.from({ length: 64 }, (_, i) => String(i).padStart(2, '0'));
const ADDR4 = 'ipv4_addr . inet_proto . inet_service';
const ADDR6 = 'ipv6_addr . inet_proto . inet_service';
const KEY = 'inet_proto . inet_service';

/** Every set, with the elements given by name (the allowance shards `allow4_NN`, `allow6_NN` too), then the audit sets. */
const SETS = (elements: Readonly<Record<string, readonly string[]>> = {}): string => [
  set('ports4', ADDR4, elements.ports4), set('ports6', ADDR6, elements.ports6),
  set('wildcard4', KEY, elements.wildcard4), set('wildcard6', KEY, elements.wildcard6),
  set('open4', ADDR4, elements.open4), set('open6', ADDR6, elements.open6),
  set('openwildcard4', KEY, elements.openwildcard4), set('openwildcard6', KEY, elements.openwildcard6),
  set('endpoints4', `${ADDR4} . inet_service`, elements.endpoints4), set('endpoints6', `${ADDR6} . inet_service`, elements.endpoints6),
  set('bridges', 'ifname', elements.bridges), set('routed4', 'ifname', elements.routed4),
  set('routed6', 'ifname', elements.routed6), set('otherBridges', 'ifname', elements.otherBridges),
  ...SHARDS.map((i) => set(`allow4_${i}`, `${ADDR4} . ipv4_addr`, elements[`allow4_${i}`], true)),
  ...SHARDS.map((i) => set(`allow6_${i}`, `${ADDR6} . ipv6_addr`, elements[`allow6_${i}`], true)),
  AUDIT_SETS,
].join('');

const CHAINS = (forward: string) => `\tchain prerouting {
\t\ttype filter hook prerouting priority -150; policy accept;
\t\tiif != "lo" fib daddr type local ip daddr . meta l4proto . th dport @ports4 jump decide4
\t\tiif != "lo" fib daddr type local meta nfproto ipv4 meta l4proto . th dport @wildcard4 jump decide4
\t\tiif != "lo" fib daddr type local ip6 daddr . meta l4proto . th dport @ports6 jump decide6
\t\tiif != "lo" fib daddr type local meta nfproto ipv6 meta l4proto . th dport @wildcard6 jump decide6
\t}
\tchain decide4 {
\t\tip daddr . meta l4proto . th dport @open4 accept
\t\tmeta l4proto . th dport @openwildcard4 accept
\t\tth dport & 63 vmap { ${SHARDS.map((i) => `${Number(i)} : jump allow4_${i}`).join(', ')} }
\t\tcounter drop
\t}
\tchain decide6 {
\t\tip6 daddr . meta l4proto . th dport @open6 accept
\t\tmeta l4proto . th dport @openwildcard6 accept
\t\tth dport & 63 vmap { ${SHARDS.map((i) => `${Number(i)} : jump allow6_${i}`).join(', ')} }
\t\tcounter drop
\t}
${SHARDS.map((i) => `\tchain allow4_${i} {\n\t\tip daddr . meta l4proto . th dport . ip saddr @allow4_${i} accept\n\t}\n`).join('')}${SHARDS.map((i) => `\tchain allow6_${i} {\n\t\tip6 daddr . meta l4proto . th dport . ip6 saddr @allow6_${i} accept\n\t}\n`).join('')}\tchain forward {
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
  t.equal(renderTable({ ...NONE, defaultDeny: false }), `${HEADER}${SETS()}${CHAINS('')}}\n`);
});

t.test('audit mode: every drop is a counted return, and new connections at a published port are counted by source', async (t) => {
  const audit = renderTable({ ...NONE, defaultDeny: true, audit: true });
  const expected = CHAINS(BASELINE).replaceAll('counter drop', 'counter return')
    .replace('jump allow4_63 }\n', 'jump allow4_63 }\n\t\tct state new update @audit4 { ip saddr . ip daddr . meta l4proto . th dport }\n')
    .replace('jump allow6_63 }\n', 'jump allow6_63 }\n\t\tct state new update @audit6 { ip6 saddr . ip6 daddr . meta l4proto . th dport }\n');
  t.equal(audit, `${HEADER}${SETS()}${expected}}\n`);
  t.notMatch(audit, /drop/, 'nothing is dropped');
});

t.test('the guard: the same sets and chains in a table of its own that the writing socket owns; written with the table as one script', async (t) => {
  const plan = { ...PLAN, routed4: ['br-0123456789ab'] };
  const guardHeader = 'table inet dockwarden_guard { flags owner; }\ndelete table inet dockwarden_guard\ntable inet dockwarden_guard {\n\tflags owner;\n';
  t.equal(renderTable(plan, true), renderTable(plan).replace(HEADER, guardHeader), 'the table\'s body under the guard\'s header');
  t.equal(renderTableAndGuard(plan), renderTable(plan) + renderTable(plan, true), 'one script: the table, then the guard');
});

t.test('an empty table, ports.default deny: the fail-closed baseline', async (t) => {
  t.equal(renderTable({ ...NONE, defaultDeny: true }), `${HEADER}${SETS()}${CHAINS(BASELINE)}}\n`);
});

t.test('a full table, IPv4 and IPv6', async (t) => {
  t.equal(renderTable({ ...PLAN, routed4: ['br-0123456789ab'], otherBridges: ['lxcbr0', 'virbr0'] }), `${HEADER}${SETS({
    // 443 is open to everyone on every address; udp 53 on one address from a /24 (shard 53 & 63);
    // sctp 9 on one IPv6 address from nobody (a port and no allowance).
    ports4: ['192.0.2.2 . udp . 53'],
    ports6: ['2001:db8::2 . sctp . 9'],
    wildcard4: ['tcp . 443'],
    wildcard6: ['tcp . 443'],
    openwildcard4: ['tcp . 443'],
    openwildcard6: ['tcp . 443'],
    allow4_53: ['192.0.2.2/32 . udp . 53 . 198.51.100.0/24'],
    endpoints4: ['172.17.0.2 . tcp . 8443 . 443', '172.18.0.3 . udp . 53 . 53'],
    endpoints6: ['2001:db8:17::2 . tcp . 8443 . 443'],
    bridges: ['"br-0123456789ab"', '"docker0"'],
    routed4: ['"br-0123456789ab"'],
    otherBridges: ['"lxcbr0"', '"virbr0"'],
  })}${CHAINS(BASELINE)}}
`);
});

t.test('element changes: one transaction, deletions first', async (t) => {
  const before = planAll([web], { defaultDeny: true, bridges: ['docker0'] });
  const after = planAll([dns], { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'] });
  t.equal(renderElementChanges(diffElements(before, after)), `delete element inet dockwarden wildcard4 {
\ttcp . 443
}
delete element inet dockwarden wildcard6 {
\ttcp . 443
}
delete element inet dockwarden openwildcard4 {
\ttcp . 443
}
delete element inet dockwarden openwildcard6 {
\ttcp . 443
}
delete element inet dockwarden endpoints4 {
\t172.17.0.2 . tcp . 8443 . 443
}
delete element inet dockwarden endpoints6 {
\t2001:db8:17::2 . tcp . 8443 . 443
}
add element inet dockwarden ports4 {
\t192.0.2.2 . udp . 53
}
add element inet dockwarden ports6 {
\t2001:db8::2 . sctp . 9
}
add element inet dockwarden allow4_53 {
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
  bad('a published host address that is a block', { ports: [{ ...port, hostAddr: block('192.0.2.0/24') }] }, /published host address block/);
  bad('IPv4 block claiming family 6', { ports: [{ ...port, hostAddr: cidr({ family: 6 }) }] }, /IPv6 block/);
  bad('non-canonical IPv6 address', { endpoints: [{ ...endpoint, addr: { family: 6, text: '2001:DB8::1' } }] }, /IPv6 address/);
  bad('address with a prefix', { endpoints: [{ ...endpoint, addr: { family: 4, text: '172.17.0.0/16' } }] }, /IPv4 address/);
  bad('family 5', { endpoints: [{ ...endpoint, addr: { family: 5 as never, text: '172.17.0.2' } }] }, /address family 5/);
});

t.test('dockerd\'s cgroup: under ports.default deny, new connections to its sockets past the judged ports are dropped', async (t) => {
  const cgroupRule = (level: number, path: string, verdict = 'counter drop') =>
    `\t\tiif != "lo" fib daddr type local ct state new socket cgroupv2 level ${level} "${path}" ${verdict}\n`;
  const withRule = (rule: string) => CHAINS(BASELINE).replace('@wildcard6 jump decide6\n', `@wildcard6 jump decide6\n${rule}`);
  const unified = { mount: '', path: 'system.slice/docker.service', id: 4242 };
  t.equal(renderTable({ ...NONE, defaultDeny: true, engineCgroup: unified }), `${HEADER}${SETS()}${withRule(cgroupRule(2, 'system.slice/docker.service'))}}\n`,
    'unified host: the path as under /sys/fs/cgroup, its depth as the level, after the jumps of the judged ports');
  const hybrid = { mount: 'unified', path: 'system.slice/docker.service', id: 4242 };
  t.match(renderTable({ ...NONE, defaultDeny: true, engineCgroup: hybrid }), cgroupRule(2, 'unified/system.slice/docker.service'),
    'hybrid host: the v2 mount\'s directory in the path, not in the level');
  t.match(renderTable({ ...NONE, defaultDeny: true, engineCgroup: hybrid }, true), cgroupRule(2, 'unified/system.slice/docker.service'), 'in the guard too');
  t.equal(renderTable({ ...NONE, defaultDeny: false, engineCgroup: unified }), `${HEADER}${SETS()}${CHAINS('')}}\n`, 'ports.default allow: no such rule');
  t.match(renderTable({ ...NONE, defaultDeny: true, audit: true, engineCgroup: unified }), cgroupRule(2, 'system.slice/docker.service', 'counter return'), 'audit mode: counted, not dropped');
  t.notMatch(renderTable({ ...NONE, defaultDeny: true }), /cgroupv2/, 'none known: no such rule');

  // The path goes into the script between quotes: only what systemd names cgroups with, never the root.
  const bad = (how: string, cgroup: { mount: string; path: string }) =>
    t.throws(() => renderTable({ ...NONE, defaultDeny: true, engineCgroup: { ...cgroup, id: 1 } }), /refusing to render cgroup/, how);
  bad('the root cgroup', { mount: '', path: '' });
  bad('the root cgroup of a hybrid host', { mount: 'unified', path: '' });
  bad('a quote', { mount: '', path: 'system.slice/docker.service" accept' });
  bad('a space', { mount: '', path: 'system.slice/docker service' });
  bad('a backslash (systemd\'s escapes)', { mount: '', path: 'system.slice/docker\\x2dx.service' });
  bad('..', { mount: '', path: 'system.slice/../../etc' });
  bad('an empty segment', { mount: '', path: 'system.slice//docker.service' });
  bad('a leading slash', { mount: '', path: '/system.slice/docker.service' });
  bad('a mount two directories deep', { mount: 'a/b', path: 'docker.service' });
  bad('a newline', { mount: '', path: 'docker.service\n\t\taccept' });
});
