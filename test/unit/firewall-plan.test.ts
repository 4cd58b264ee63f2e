import t from 'tap';
import type { Decision } from '../../src/domain/decision.js';
import type { PublishedPort } from '../../src/domain/facts.js';
import {
  diffElements, elementKey, isEmpty, isFirewallInputError, parseAddress, planAll, planContainer, sameElementsApart,
  type ContainerElements, type FirewallElements,
} from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import type { Cidr } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const block = (text: string): Cidr => parseCidr(text)!;
const tcp = (hostPort: number, containerPort = 80, hostIp = '0.0.0.0'): PublishedPort => ({ proto: 'tcp', hostIp, hostPort, containerPort });
const decision = (id: string, ...ports: Array<[PublishedPort, 'any' | string[]]>): Pick<Decision, 'containerId' | 'ports'> => ({
  containerId: id,
  ports: ports.map(([port, allow]) => ({ port, rule: 'r', allow: allow === 'any' ? 'any' : allow.map(block), narrowedByLabel: false, labelError: null })),
});
const NETS = [
  { name: 'bridge', networkId: 'n1', ipv4: '172.17.0.2', ipv6: '2001:db8:17::2', mac: '' },
  { name: 'web', networkId: 'n2', ipv4: '172.18.0.5', ipv6: '', mac: '' },
];
const container = (id: string, ...ports: Array<[PublishedPort, 'any' | string[]]>): ContainerElements =>
  planContainer(makeFacts({ id, networks: NETS }), decision(id, ...ports));
const OPTIONS = { defaultDeny: true, bridges: [] };

/** Elements as text, the way nft would show them, for readable expectations. */
const show = (e: FirewallElements) => ({
  ports: e.ports.map((p) => `${p.hostAddr.text} . ${p.proto} . ${p.port}`),
  allows: e.allows.map((a) => `${a.hostAddr.text} . ${a.proto} . ${a.port} . ${a.source.text}`),
  endpoints: e.endpoints.map((p) => `${p.addr.text} . ${p.proto} . ${p.port} . ${p.hostPort}`),
  bridges: e.bridges,
});

t.test('a running container: host side, allowances and endpoints per family', async (t) => {
  const elements = container('a', [tcp(8080, 80), ['198.51.100.0/24', '2001:db8:1::/48']], [tcp(8080, 80, '::'), ['198.51.100.0/24', '2001:db8:1::/48']]);
  t.same(show(planAll([elements], OPTIONS)), {
    ports: ['0.0.0.0/0 . tcp . 8080', '::/0 . tcp . 8080'],
    allows: ['0.0.0.0/0 . tcp . 8080 . 198.51.100.0/24', '::/0 . tcp . 8080 . 2001:db8:1::/48'],
    endpoints: ['172.17.0.2 . tcp . 80 . 8080', '172.18.0.5 . tcp . 80 . 8080', '2001:db8:17::2 . tcp . 80 . 8080'],
    bridges: [],
  });
});

t.test('host bindings: wildcard, empty, specific IPv4 and IPv6', async (t) => {
  const hosts = (hostIp: string) => container('a', [tcp(443, 443, hostIp), []]).claims.map((c) => c.hostAddr.text);
  t.same(hosts('0.0.0.0'), ['0.0.0.0/0']);
  t.same(hosts(''), ['0.0.0.0/0'], "'' binds every IPv4 address");
  t.same(hosts('::'), ['::/0']);
  t.same(hosts('192.0.2.7'), ['192.0.2.7/32']);
  t.same(hosts('2001:DB8:0::7'), ['2001:db8::7/128'], 'canonical IPv6');
});

t.test('allowances: any, nobody, per family, nested blocks collapsed', async (t) => {
  const plan = (allow: 'any' | string[]) => show(planAll([container('a', [tcp(80), allow], [tcp(80, 80, '::'), allow])], OPTIONS));
  t.same(plan('any').allows, ['0.0.0.0/0 . tcp . 80 . 0.0.0.0/0', '::/0 . tcp . 80 . ::/0']);
  const nobody = plan([]);
  t.same(nobody.allows, [], 'a port nobody may reach has no allowance');
  t.same(nobody.ports, ['0.0.0.0/0 . tcp . 80', '::/0 . tcp . 80'], '…but is still judged');
  t.same(plan(['198.51.100.7', '198.51.100.0/24', '2001:db8::/32', '2001:db8:1::/48', '10.0.0.0/8']).allows, [
    '0.0.0.0/0 . tcp . 80 . 10.0.0.0/8',
    '0.0.0.0/0 . tcp . 80 . 198.51.100.0/24',
    '::/0 . tcp . 80 . 2001:db8::/32',
  ], 'blocks inside others are dropped: the kernel rejects overlapping elements');
});

t.test('not running, unpublished ports: nothing', async (t) => {
  const stopped = makeFacts({ id: 'a', state: { running: false, status: 'exited', pid: 0, startedAt: '' } });
  t.same(planContainer(stopped, decision('a', [tcp(80), 'any'])), { containerId: 'a', claims: [], endpoints: [] });
  t.same(container('a', [tcp(0), 'any']), { containerId: 'a', claims: [], endpoints: [] }, 'host port 0');
  const hostNet = planContainer(makeFacts({ id: 'a', networks: [] }), decision('a', [tcp(80), 'any']));
  t.same(hostNet.endpoints, [], 'no network address, no endpoint');
  t.equal(hostNet.claims.length, 1);
});

t.test('malformed values are refused, naming the container', async (t) => {
  const refuse = (why: string, run: () => unknown, message: RegExp) => {
    t.throws(run, message, why);
    try {
      run();
    } catch (err) {
      t.ok(isFirewallInputError(err), `${why}: a FirewallInputError`);
    }
  };
  for (const hostIp of ['0.0.0.0; flush ruleset', '10.0.0.1/8', 'fe80::1%eth0', '::1.2.3.4', '010.0.0.1', 'localhost']) {
    refuse(`host ip ${hostIp}`, () => container('a', [tcp(80, 80, hostIp), 'any']), /^container a: host ip is not an IP address/);
  }
  refuse('network address', () => planContainer(makeFacts({ id: 'a', networks: [{ ...NETS[0]!, ipv4: '172.17.0.2 }' }] }), decision('a')),
    /network address is not an IP address: "172\.17\.0\.2 }"/);
  refuse('host port', () => container('a', [tcp(70000), 'any']), /host port 70000 outside 1\.\.65535/);
  refuse('container port', () => container('a', [tcp(80, 1.5), 'any']), /container port 1\.5 outside/);
  refuse('decision of another container', () => planContainer(makeFacts({ id: 'a' }), decision('b')), /decision is for b/);
});

t.test('planAll: merged, sorted, order-independent', async (t) => {
  const a = container('a', [tcp(8080), ['198.51.100.0/24']]);
  const b = container('b', [tcp(443, 443), 'any']);
  const plan = planAll([a, b], { defaultDeny: false, bridges: ['docker0', 'br-0123456789ab', 'docker0'] });
  t.same(planAll([b, a], { defaultDeny: false, bridges: ['br-0123456789ab', 'docker0'] }), plan);
  t.equal(plan.defaultDeny, false);
  t.same(plan.bridges, ['br-0123456789ab', 'docker0']);
  t.same(show(planAll([], OPTIONS)), { ports: [], allows: [], endpoints: [], bridges: [] });
});

t.test('an address reused before the old container is gone: each keeps endpoints of its own host ports', async (t) => {
  // b got a's old address before a's `destroy` was handled (or while dockwarden was down).
  const a = container('a', [tcp(8080), ['198.51.100.0/24']]);
  const b = container('b', [tcp(9090), ['198.51.100.0/24']]);
  const both = planAll([a, b], OPTIONS);
  t.same(show(both).endpoints, ['172.17.0.2 . tcp . 80 . 8080', '172.17.0.2 . tcp . 80 . 9090', '172.18.0.5 . tcp . 80 . 8080', '172.18.0.5 . tcp . 80 . 9090'],
    'one element per address and host port (IPv4 bindings: IPv4 endpoints)');
  const diff = diffElements(both, planAll([b], OPTIONS));
  t.same(show(diff.delete), {
    ports: ['0.0.0.0/0 . tcp . 8080'], allows: ['0.0.0.0/0 . tcp . 8080 . 198.51.100.0/24'], endpoints: ['172.17.0.2 . tcp . 80 . 8080', '172.18.0.5 . tcp . 80 . 8080'], bridges: [],
  }, "a's endpoints go with it: they never let a connection to b's port through");
  t.ok(isEmpty(diff.add));
});

t.test('overlapping claims on one port fail closed', async (t) => {
  const wide = container('a', [tcp(80), ['198.51.100.0/24', '10.0.0.0/8']]);
  const narrow = container('b', [tcp(80, 80, '192.0.2.7'), ['198.51.100.0/25', '172.16.0.0/12']]);
  t.same(show(planAll([narrow, wide], OPTIONS)).ports, ['0.0.0.0/0 . tcp . 80'], 'one element: the widest host address');
  t.same(show(planAll([narrow, wide], OPTIONS)).allows, ['0.0.0.0/0 . tcp . 80 . 198.51.100.0/25'],
    'only sources both claims allow');
  const twin = container('c', [tcp(80), ['10.1.0.0/16']]);
  t.same(show(planAll([wide, twin], OPTIONS)).allows, ['0.0.0.0/0 . tcp . 80 . 10.1.0.0/16'], 'the same binding twice: intersection');
  const other = container('d', [tcp(80, 80, '192.0.2.8'), ['172.16.0.0/12']]);
  t.same(show(planAll([narrow, other], OPTIONS)).allows, [
    '192.0.2.7/32 . tcp . 80 . 172.16.0.0/12',
    '192.0.2.7/32 . tcp . 80 . 198.51.100.0/25',
    '192.0.2.8/32 . tcp . 80 . 172.16.0.0/12',
  ], 'disjoint host addresses do not conflict');
});

t.test('diffElements: a start and a stop are small transactions', async (t) => {
  const a = container('a', [tcp(8080), ['198.51.100.0/24']]);
  const b = planContainer(
    makeFacts({ id: 'b', networks: [{ name: 'bridge', networkId: 'n1', ipv4: '172.17.0.3', ipv6: '', mac: '' }] }),
    decision('b', [tcp(443, 443), 'any']),
  );
  const before = planAll([a], { defaultDeny: true, bridges: ['docker0'] });
  const after = planAll([a, b], { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'] });
  const start = diffElements(before, after);
  t.same(show(start.add), {
    ports: ['0.0.0.0/0 . tcp . 443'],
    allows: ['0.0.0.0/0 . tcp . 443 . 0.0.0.0/0'],
    endpoints: ['172.17.0.3 . tcp . 443 . 443'],
    bridges: ['br-0123456789ab'],
  });
  t.ok(isEmpty(start.delete));
  const stop = diffElements(after, before);
  t.same(stop.delete, start.add, 'stop undoes start');
  t.ok(isEmpty(stop.add));
  const same = diffElements(after, planAll([b, a], { defaultDeny: true, bridges: ['br-0123456789ab', 'docker0'] }));
  t.ok(isEmpty(same.add) && isEmpty(same.delete), 'nothing to do when nothing changed');
});

t.test('parseAddress: single addresses only, canonical', async (t) => {
  t.same(parseAddress('2001:DB8::0:1'), { family: 6, text: '2001:db8::1' });
  t.same(parseAddress('198.51.100.7'), { family: 4, text: '198.51.100.7' });
  for (const bad of ['198.51.100.0/24', '1.2.3', '', ' 1.2.3.4', '::ffff:1.2.3.4']) t.equal(parseAddress(bad), null, JSON.stringify(bad));
});

t.test('sameElementsApart: the same elements in any order; a changed, missing or extra one differs', async (t) => {
  const port = { hostAddr: block('0.0.0.0/0'), proto: 'tcp' as const, port: 80 };
  const plan = {
    ports: [port, { ...port, port: 81 }],
    allows: [{ ...port, source: block('198.51.100.0/24') }],
    endpoints: [{ addr: { family: 4 as const, text: '172.17.0.2' }, proto: 'tcp' as const, port: 80, hostPort: 8080 }],
    bridges: ['docker0'],
  };
  let pauses = 0;
  const same = (a: FirewallElements, b: FirewallElements, changing: string[] = []) => sameElementsApart(a, b, new Set(changing), async () => void pauses++);
  t.ok(await same(plan, { ...plan, ports: [...plan.ports].reverse() }));
  t.notOk(await same(plan, { ...plan, ports: [port, { ...port, port: 82 }] }), 'a changed port');
  t.notOk(await same(plan, { ...plan, allows: [] }), 'a missing allowance');
  t.notOk(await same(plan, { ...plan, endpoints: [...plan.endpoints, { ...plan.endpoints[0]!, port: 81 }] }), 'an extra endpoint');
  t.notOk(await same(plan, { ...plan, endpoints: [{ ...plan.endpoints[0]!, hostPort: 8081 }] }), 'another host port');
  t.notOk(await same(plan, { ...plan, allows: [{ ...port, source: block('198.51.100.0/25') }] }), 'another source block');
  t.notOk(await same(plan, { ...plan, bridges: ['docker1'] }), 'another bridge');

  // Elements a transaction changed while the kernel was read may be either way; every other one is compared.
  const applied = { ...plan, ports: [port] };
  const port81 = elementKey('ports', { ...port, port: 81 });
  t.ok(await same(plan, applied, [port81]), 'the kernel already has an element added meanwhile');
  t.ok(await same(applied, plan, [port81]), 'or not yet');
  t.notOk(await same({ ...plan, allows: [] }, applied, [port81]), 'but an element nobody changed is still missed');
  t.notOk(await same({ ...applied, ports: [{ ...port, port: 82 }] }, applied, [port81]), 'or one nobody added found');
  t.notOk(await same({ ...applied, ports: [port, { ...port, port: 82 }] }, { ...plan, ports: [port, { ...port, port: 81 }] }, [port81]),
    'and one changing does not excuse another that is not');
});

t.test('sameElementsApart: a comparison of many elements gives other work turns, and a key that joins `changing` midway counts on both sides', async (t) => {
  const ports = Array.from({ length: 5_000 }, (_, i) => ({ hostAddr: block('0.0.0.0/0'), proto: 'tcp' as const, port: 1 + i }));
  const elements = { ports, allows: [], endpoints: [], bridges: [] };
  const changing = new Set<string>();
  let pauses = 0;
  const found = { ...elements, ports: ports.slice(1) }; // port 1 deleted by a transaction during the read
  const result = sameElementsApart(found, elements, changing, async () => {
    if (++pauses === 1) changing.add(elementKey('ports', ports[0]!)); // its key recorded while the comparison runs
  });
  t.ok(await result, 'the element deleted meanwhile is left out on both sides');
  t.ok(pauses >= 4, `${pauses} turns given to other work over 9,999 elements`);
});