import t from 'tap';
import { renderRemoval, renderRestore, renderRules, type UserChainState } from '../../src/adapters/iptables/render.js';
import { isUnsafeValueError } from '../../src/adapters/firewall/safe-values.js';
import type { Decision } from '../../src/domain/decision.js';
import { planAll, planContainer, type FirewallElements, type FirewallPlan } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import type { Cidr } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const block = (text: string): Cidr => parseCidr(text)!;
const NONE: Omit<FirewallPlan, 'defaultDeny'> = { ports: [], allows: [], endpoints: [], bridges: [], routed4: [], routed6: [], otherBridges: [] };
const JUMP_OK: UserChainState = { exists: true, jumps: 1, jumpFirst: true };

// Two containers, IPv4 and IPv6, a specific host address, udp and sctp, and a port nobody may reach.
const decision = (containerId: string, ports: Decision['ports']): Pick<Decision, 'containerId' | 'ports'> => ({ containerId, ports });
const web = planContainer(
  makeFacts({ id: 'w', networks: [{ name: 'bridge', networkId: 'n1', ipv4: '172.17.0.2', ipv6: '2001:db8:17::2', mac: '' }] }),
  decision('w', [
    { port: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 443, containerPort: 8443 }, rule: 'web', allow: 'any', narrowedByLabel: false, labelError: null },
    { port: { proto: 'tcp', hostIp: '::', hostPort: 443, containerPort: 8443 }, rule: 'web', allow: [block('2001:db8::/32'), block('fd00::7')], narrowedByLabel: false, labelError: null },
  ]),
);
const dns = planContainer(
  makeFacts({ id: 'd', networks: [{ name: 'br', networkId: 'n2', ipv4: '172.18.0.3', ipv6: '', mac: '' }] }),
  decision('d', [
    { port: { proto: 'udp', hostIp: '192.0.2.2', hostPort: 53, containerPort: 53 }, rule: 'dns', allow: [block('198.51.100.0/24'), block('10.1.2.3')], narrowedByLabel: false, labelError: null },
    { port: { proto: 'sctp', hostIp: '2001:db8::2', hostPort: 9, containerPort: 9 }, rule: null, allow: [], narrowedByLabel: false, labelError: null },
  ]),
);
const PLAN = planAll([web, dns], { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'] });

const PORTS4 = `-A DOCKWARDEN -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -j RETURN
-A DOCKWARDEN -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -j DROP
-A DOCKWARDEN -s 10.1.2.3/32 -p udp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2 --ctorigdstport 53 --ctdir ORIGINAL -j RETURN
-A DOCKWARDEN -s 198.51.100.0/24 -p udp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2 --ctorigdstport 53 --ctdir ORIGINAL -j RETURN
-A DOCKWARDEN -p udp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2 --ctorigdstport 53 --ctdir ORIGINAL -j DROP
`;
// Whatever the out interface (a custom bridge name may be unknown): new DNATed connections not judged above.
const BASELINE = `-A DOCKWARDEN -m conntrack --ctstate NEW -m conntrack --ctstate DNAT -j DROP
`;
// The docker-proxy path (INPUT), by host port: the same sources.
const INPUT4 = `-A DOCKWARDEN-INPUT ! -i lo -p tcp -m tcp --dport 443 -j RETURN
-A DOCKWARDEN-INPUT ! -i lo -p tcp -m tcp --dport 443 -j DROP
-A DOCKWARDEN-INPUT -s 10.1.2.3/32 -d 192.0.2.2/32 ! -i lo -p udp -m udp --dport 53 -j RETURN
-A DOCKWARDEN-INPUT -s 198.51.100.0/24 -d 192.0.2.2/32 ! -i lo -p udp -m udp --dport 53 -j RETURN
-A DOCKWARDEN-INPUT -d 192.0.2.2/32 ! -i lo -p udp -m udp --dport 53 -j DROP
`;
const INPUT6 = `-A DOCKWARDEN-INPUT -d 2001:db8::2/128 ! -i lo -p sctp -m sctp --dport 9 -j DROP
-A DOCKWARDEN-INPUT -s 2001:db8::/32 ! -i lo -p tcp -m tcp --dport 443 -j RETURN
-A DOCKWARDEN-INPUT -s fd00::7/128 ! -i lo -p tcp -m tcp --dport 443 -j RETURN
-A DOCKWARDEN-INPUT ! -i lo -p tcp -m tcp --dport 443 -j DROP
`;
const HEAD = '*filter\n:DOCKWARDEN - [0:0]\n:DOCKWARDEN-INPUT - [0:0]\n';
// Direct routing: new connections out to a Docker bridge, neither DNATed nor from a Docker bridge.
const DIRECT = `-A DOCKWARDEN -i br-0123456789ab -m conntrack --ctstate NEW -j RETURN
-A DOCKWARDEN -i docker0 -m conntrack --ctstate NEW -j RETURN
-A DOCKWARDEN -i br-+ -m conntrack --ctstate NEW -j RETURN
-A DOCKWARDEN -o br-0123456789ab -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP
-A DOCKWARDEN -o docker0 -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP
-A DOCKWARDEN -o br-+ -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP
`;

t.test('IPv4: per port its sources then a drop; then the fail-closed baseline', async (t) => {
  t.equal(renderRestore(PLAN, 4), `${HEAD}${PORTS4}-A DOCKWARDEN -d 172.17.0.2/32 -p tcp -m tcp --dport 8443 -m conntrack --ctstate DNAT --ctorigdstport 443 -j RETURN
-A DOCKWARDEN -d 172.18.0.3/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT --ctorigdstport 53 -j RETURN
${BASELINE}${DIRECT}${INPUT4}COMMIT
`);
});

t.test('IPv6: only IPv6 elements; the bridges again', async (t) => {
  t.equal(renderRestore(PLAN, 6), `${HEAD}-A DOCKWARDEN -p sctp -m conntrack --ctstate DNAT --ctorigdst 2001:db8::2 --ctorigdstport 9 --ctdir ORIGINAL -j DROP
-A DOCKWARDEN -s 2001:db8::/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -j RETURN
-A DOCKWARDEN -s fd00::7/128 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -j RETURN
-A DOCKWARDEN -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -j DROP
-A DOCKWARDEN -d 2001:db8:17::2/128 -p tcp -m tcp --dport 8443 -m conntrack --ctstate DNAT --ctorigdstport 443 -j RETURN
${BASELINE}${DIRECT}${INPUT6}COMMIT
`);
});

t.test('ports.default allow: no endpoints, no baseline; direct routing is dropped all the same', async (t) => {
  t.equal(renderRestore({ ...PLAN, defaultDeny: false }, 4), `${HEAD}${PORTS4}${DIRECT}${INPUT4}COMMIT\n`);
  t.same(renderRules({ ...NONE, defaultDeny: false }, 6), [
    '-A DOCKWARDEN -i br-+ -m conntrack --ctstate NEW -j RETURN',
    '-A DOCKWARDEN -o br-+ -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP',
  ], 'empty, allow: only br-+');
  t.same(renderRules({ ...NONE, defaultDeny: true }, 4).slice(0, 1), BASELINE.trimEnd().split('\n'), 'empty, deny: DNATed connections on any interface');
});

t.test('routed bridges (per family) and other bridges are let through, before any drop', async (t) => {
  const plan: FirewallPlan = { ...NONE, defaultDeny: true, bridges: ['docker0'], routed4: ['docker0'], routed6: ['br-0123456789ab'], otherBridges: ['virbr0'] };
  t.same(renderRules(plan, 4), [
    '-A DOCKWARDEN -o virbr0 -j RETURN',
    '-A DOCKWARDEN -m conntrack --ctstate NEW -m conntrack --ctstate DNAT -j DROP',
    '-A DOCKWARDEN -i docker0 -m conntrack --ctstate NEW -j RETURN',
    '-A DOCKWARDEN -i br-+ -m conntrack --ctstate NEW -j RETURN',
    '-A DOCKWARDEN -o docker0 -j RETURN',
    '-A DOCKWARDEN -o docker0 -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP',
    '-A DOCKWARDEN -o br-+ -m conntrack --ctstate NEW -m conntrack ! --ctstate DNAT -j DROP',
  ]);
  t.match(renderRules(plan, 6), ['-A DOCKWARDEN -o virbr0 -j RETURN'], 'IPv6: the same other bridge');
  t.ok(renderRules(plan, 6).includes('-A DOCKWARDEN -o br-0123456789ab -j RETURN'), 'and its own routed bridge');
  t.notOk(renderRules(plan, 6).includes('-A DOCKWARDEN -o docker0 -j RETURN'), 'not the IPv4 one');
  t.throws(() => renderRules({ ...plan, otherBridges: ['virbr0\n-F DOCKER-USER'] }, 4), /refusing to render interface name/);
  t.throws(() => renderRules({ ...plan, routed4: ['br+'] }, 4), /refusing to render interface name/);
});

t.test('the jumps from DOCKER-USER and INPUT are repaired in the same commit', async (t) => {
  const empty: FirewallPlan = { ...NONE, defaultDeny: false };
  const restore = (userChain: UserChainState, input: UserChainState = JUMP_OK) => renderRestore(empty, 4, userChain, input);
  const rules = renderRules(empty, 4).join('\n');
  t.equal(restore(JUMP_OK), `${HEAD}${rules}\nCOMMIT\n`, 'exactly one jump each, first: nothing to do');
  t.equal(restore({ exists: false, jumps: 0, jumpFirst: false }),
    `${HEAD}${rules}\n-N DOCKER-USER\n-I DOCKER-USER 1 -j DOCKWARDEN\nCOMMIT\n`, 'Docker has not created DOCKER-USER yet');
  t.equal(restore({ exists: true, jumps: 0, jumpFirst: false }),
    `${HEAD}${rules}\n-I DOCKER-USER 1 -j DOCKWARDEN\nCOMMIT\n`, 'no jump');
  t.equal(restore({ exists: true, jumps: 2, jumpFirst: true }),
    `${HEAD}${rules}\n-D DOCKER-USER -j DOCKWARDEN\n-D DOCKER-USER -j DOCKWARDEN\n-I DOCKER-USER 1 -j DOCKWARDEN\nCOMMIT\n`,
    'two jumps: both out, one in at the top');
  t.equal(restore({ exists: true, jumps: 1, jumpFirst: false }),
    `${HEAD}${rules}\n-D DOCKER-USER -j DOCKWARDEN\n-I DOCKER-USER 1 -j DOCKWARDEN\nCOMMIT\n`, 'one jump, not first');
  t.equal(restore(JUMP_OK, { exists: true, jumps: 1, jumpFirst: false }),
    `${HEAD}${rules}\n-D INPUT -j DOCKWARDEN-INPUT\n-I INPUT 1 -j DOCKWARDEN-INPUT\nCOMMIT\n`, 'the INPUT jump, not first');
});

t.test('removal: every jump, then the chains; DOCKER-USER stays', async (t) => {
  t.equal(renderRemoval({ exists: true, jumps: 2, jumpFirst: true }, true),
    '*filter\n-D DOCKER-USER -j DOCKWARDEN\n-D DOCKER-USER -j DOCKWARDEN\n-F DOCKWARDEN\n-X DOCKWARDEN\nCOMMIT\n');
  t.equal(renderRemoval({ exists: false, jumps: 0, jumpFirst: false }, true), '*filter\n-F DOCKWARDEN\n-X DOCKWARDEN\nCOMMIT\n');
  t.equal(renderRemoval(JUMP_OK, true, JUMP_OK, true),
    '*filter\n-D DOCKER-USER -j DOCKWARDEN\n-D INPUT -j DOCKWARDEN-INPUT\n-F DOCKWARDEN\n-X DOCKWARDEN\n-F DOCKWARDEN-INPUT\n-X DOCKWARDEN-INPUT\nCOMMIT\n');
});

t.test('audit mode: every DROP is a RETURN, and new connections at a published port are recorded by source', async (t) => {
  const audit = renderRestore({ ...PLAN, audit: true }, 4);
  t.notMatch(audit, /DROP/, 'nothing is dropped');
  t.match(audit, '-A DOCKWARDEN -p tcp -m conntrack --ctstate DNAT --ctorigdstport 443 --ctdir ORIGINAL -m conntrack --ctstate NEW -m recent --set --name dw-0.0.0.0-tcp-443 --mask 255.255.255.255 --rsource\n');
  t.match(audit, '-A DOCKWARDEN-INPUT -d 192.0.2.2/32 ! -i lo -p udp -m udp --dport 53 -m conntrack --ctstate NEW -m recent --set --name dw-192.0.2.2-udp-53 --mask 255.255.255.255 --rsource\n');
  t.equal(audit.replaceAll(/^.* -m recent .*\n/gm, '').replaceAll('-j RETURN', '-j DROP'), renderRestore(PLAN, 4).replaceAll('-j RETURN', '-j DROP'),
    'otherwise the same rules');
});

t.test('names, labels and images never reach the payload', async (t) => {
  const hostile = '"\n-F DOCKER-USER\n#';
  const facts = makeFacts({
    id: 'x', name: `web${hostile}`, labels: { [`dockwarden${hostile}`]: hostile },
    image: { reference: `evil${hostile}`, id: 'sha256:1', repoTags: [], repoDigests: [] },
  });
  const elements = planContainer(facts, decision('x', [
    { port: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 80, containerPort: 80 }, rule: hostile, allow: 'any', narrowedByLabel: true, labelError: null },
  ]));
  const payload = renderRestore(planAll([elements], { defaultDeny: true, bridges: [] }), 4);
  t.notMatch(payload, /-F|evil|web|dockwarden"/);
});

t.test('values that are not canonical and typed are refused before any text is produced', async (t) => {
  const port = PLAN.ports[0]!;
  const allow = PLAN.allows[0]!;
  const endpoint = PLAN.endpoints[0]!;
  const bad = (name: string, elements: Partial<FirewallElements>, message: RegExp, family: 4 | 6 = 4) => {
    let error: unknown = null;
    try {
      renderRestore({ ...NONE, defaultDeny: true, ...elements }, family);
    } catch (err) {
      error = err;
    }
    t.ok(isUnsafeValueError(error), `${name}: UnsafeValueError`);
    t.match(String(error), message, name);
  };
  const cidr = (fields: Partial<Cidr>): Cidr => ({ ...block('198.51.100.0/24'), ...fields });

  bad('newline in an interface name', { bridges: ['docker0\n-F DOCKER-USER'] }, /refusing to render interface name/);
  bad('a wildcard other than the fixed br-+', { bridges: ['veth+'] }, /refusing to render interface name "veth\+"/);
  bad('interface name over 15 characters', { bridges: ['br-0123456789abc'] }, /interface name "br-0123456789abc"/);
  bad('interface name with a space', { bridges: ['br 0'] }, /interface name/);
  for (const value of [0, 65536, 1.5, Number.NaN]) bad(`port ${value}`, { ports: [{ ...port, port: value }] }, /refusing to render port/);
  bad('protocol outside the enum', { ports: [{ ...port, proto: 'tcp -j ACCEPT' as never }] }, /refusing to render protocol/);
  bad('host bits set', { allows: [{ ...allow, source: cidr({ address: '198.51.100.7', text: '198.51.100.7/24' }) }] }, /IPv4 block/);
  bad('injection in a block', { allows: [{ ...allow, source: cidr({ address: '198.51.100.0 -j ACCEPT', text: '198.51.100.0 -j ACCEPT/24' }) }] }, /IPv4 block/);
  bad('IPv6 source for an IPv4 port', { allows: [{ ...allow, source: block('2001:db8::/32') }] }, /IPv4 block/);
  bad('non-canonical IPv6 address', { endpoints: [{ ...endpoint, addr: { family: 6, text: '2001:DB8::1' } }] }, /IPv6 address/, 6);
  bad('address with a prefix', { endpoints: [{ ...endpoint, addr: { family: 4, text: '172.17.0.0/16' } }] }, /IPv4 address/);
  t.throws(() => renderRestore(PLAN, 5 as never), /refusing to render address family 5/, 'family 5');
});
