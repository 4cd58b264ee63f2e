/**
 * The nftables applier against the real kernel, always inside fresh network namespaces
 * (`dwnft-<random>`): the host's own ruleset is never touched. Needs root and nft.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { isNftError, listTable, nftAvailable, runNft, tableExists, type InstalledTable } from '../../src/adapters/nftables/nft.js';
import { UnsafeValueError, renderElementChanges, renderTable } from '../../src/adapters/nftables/render.js';
import { nftablesBackend } from '../../src/adapters/nftables/backend.js';
import { NftSession } from '../../src/adapters/nftables/nft-session.js';
import { GUARD_TABLE } from '../../src/adapters/nftables/render.js';
import type { FirewallBackend } from '../../src/adapters/firewall/backend.js';
import { FirewallEnforcer } from '../../src/app/firewall-enforcer.js';
import { pino } from 'pino';
import { decisionOf } from '../helpers/decision.js';
import type { Decision } from '../../src/domain/decision.js';
import {
  FirewallInputError, diffElements, isEmpty, planAll, planContainer,
  type ContainerElements, type FirewallElements, type FirewallPlan,
} from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import { makeFacts } from '../helpers/facts.js';
import { until } from '../helpers/until.js';
import { assertClientNetFree } from '../helpers/netns.js';
import { CLIENT_JS, SERVER_JS, connects, netns as labNetns, packetTopology, startIn } from '../helpers/packet-lab.js';

/** A fresh, empty network namespace, deleted in teardown. */
const netns = (t: Test, suffix = ''): string => labNetns(t, 'dwnft', suffix);

const inNetns = (name: string, ...argv: string[]): string =>
  execFileSync('ip', ['netns', 'exec', name, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** One container with one published port per entry: [host ip, host port, container address, container port, allowed sources]. */
function container(id: string, ports: Array<[string, number, string, number, 'any' | string[]]>): ContainerElements {
  const decision: Pick<Decision, 'containerId' | 'ports'> = {
    containerId: id,
    ports: ports.map(([hostIp, hostPort, , containerPort, allow]) => ({
      port: { proto: 'tcp', hostIp, hostPort, containerPort },
      rule: 'test',
      allow: allow === 'any' ? 'any' : allow.map((text) => parseCidr(text)!),
      narrowedByLabel: false, labelError: null,
    })),
  };
  const networks = [...new Set(ports.map(([, , addr]) => addr))].map((addr) => ({
    name: 'n', networkId: 'n', ipv4: addr.includes(':') ? '' : addr, ipv6: addr.includes(':') ? addr : '', mac: '',
  }));
  return planContainer(makeFacts({ id, networks }), decision);
}

const sameElements = (a: FirewallElements, b: FirewallElements): boolean => {
  const diff = diffElements(a, b);
  return isEmpty(diff.add) && isEmpty(diff.delete);
};

async function installed(name: string): Promise<InstalledTable> {
  const table = await listTable({ netns: name });
  if (!table) throw new Error('table missing');
  return table;
}

t.test('tableExists: our table by its exact name, from the names of the tables alone', async (t) => {
  const ns = netns(t);
  t.equal(await tableExists({ netns: ns }), false, 'an empty namespace');
  inNetns(ns, 'nft', 'add', 'table', 'inet', 'dockwarden_guard');
  inNetns(ns, 'nft', 'add', 'table', 'ip', 'dockwarden');
  t.equal(await tableExists({ netns: ns }), false, 'neither the guard\'s table nor one of another family is ours');
  t.equal(await tableExists({ netns: ns }, GUARD_TABLE), true, 'the guard\'s, by its own name');
  await runNft(renderTable(planAll([], { defaultDeny: true, bridges: [] })), { netns: ns });
  t.equal(await tableExists({ netns: ns }), true);
  t.equal(await nftablesBackend({ netns: ns }).installed(), true, 'the backend\'s installed() is this');
});

const WEB = container('web', [['0.0.0.0', 443, '172.17.0.2', 8443, 'any'], ['::', 443, '2001:db8:17::2', 8443, 'any']]);
const DNS = container('dns', [['192.0.2.2', 53, '172.18.0.3', 53, ['198.51.100.0/24', '2001:db8:1::/48']]]);
const API = container('api', [['0.0.0.0', 8080, '172.17.0.4', 80, ['198.51.100.7', '10.0.0.0/8']], ['::', 8080, '2001:db8:17::4', 80, ['2001:db8::/32']]]);
const BRIDGES = ['docker0', 'br-0123456789ab'];
const BASE = planAll([WEB, DNS], { defaultDeny: true, bridges: BRIDGES });

t.test('nftAvailable: true in a namespace, false when nft cannot run there', async (t) => {
  const name = netns(t);
  t.equal(await nftAvailable({ netns: name }), true);
  t.equal(await nftAvailable({ netns: `${name}-missing` }), false);
});

t.test('the rendered table: checked, loaded, read back as applied', async (t) => {
  const name = netns(t);
  t.equal(await listTable({ netns: name }), null, 'no table yet');
  await runNft(renderTable(BASE), { netns: name, check: true });
  t.equal(await listTable({ netns: name }), null, '`nft -c` changes nothing');

  await runNft(renderTable(BASE), { netns: name });
  const table = await installed(name);
  t.ok(sameElements(table.plan, BASE), 'every set holds exactly the plan');
  t.equal(table.plan.defaultDeny, true);
  t.same(table.plan.bridges.toSorted(), BASE.bridges);
  t.same(table.foreign, []);

  const open = planAll([WEB], { defaultDeny: false, bridges: [] });
  await runNft(renderTable(open), { netns: name });
  const replaced = await installed(name);
  t.ok(sameElements(replaced.plan, open), 'a second full load replaces, not merges');
  t.equal(replaced.plan.defaultDeny, false, 'ports.default allow: no baseline');
  t.not(replaced.skeleton, table.skeleton, 'the skeleton differs by the baseline rules');

  const empty = planAll([], { defaultDeny: true, bridges: [] });
  await runNft(renderTable(empty), { netns: name });
  const emptied = await installed(name);
  t.ok(sameElements(emptied.plan, empty), 'empty sets');
  t.equal(emptied.skeleton, table.skeleton, 'same rules and set declarations whatever the elements');
});

t.test('element transactions change exactly their elements', async (t) => {
  const name = netns(t);
  await runNft(renderTable(BASE), { netns: name });
  const skeleton = (await installed(name)).skeleton;

  const withApi = planAll([WEB, DNS, API], { defaultDeny: true, bridges: [...BRIDGES, 'br-fedcba987654'] });
  await runNft(renderElementChanges(diffElements(BASE, withApi)), { netns: name });
  const started = await installed(name);
  t.ok(sameElements(started.plan, withApi), 'a start adds its elements');
  t.equal(started.skeleton, skeleton, 'rules untouched');

  await runNft(renderElementChanges(diffElements(withApi, BASE)), { netns: name });
  t.ok(sameElements((await installed(name)).plan, BASE), 'a stop takes them out again');

  // An overlapping claim on port 443 replaces web's elements in the same transaction (delete, then add).
  const clash = container('clash', [['192.0.2.9', 443, '172.17.0.9', 443, ['198.51.100.0/24']]]);
  const clashing = planAll([WEB, DNS, clash], { defaultDeny: true, bridges: BRIDGES });
  await runNft(renderElementChanges(diffElements(BASE, clashing)), { netns: name });
  t.ok(sameElements((await installed(name)).plan, clashing), 'overlap resolved into elements the kernel accepts');
});

t.test('a failed transaction changes nothing', async (t) => {
  const name = netns(t);
  await runNft(renderTable(BASE), { netns: name });
  const before = await installed(name);

  // Valid additions first; the last line is refused by the kernel (the element is not there).
  const withApi = planAll([WEB, DNS, API], { defaultDeny: true, bridges: BRIDGES });
  const missing = planAll([container('gone', [['0.0.0.0', 9999, '172.17.0.99', 99, 'any']])], { defaultDeny: true, bridges: [] });
  const script = renderElementChanges(diffElements(BASE, withApi)) +
    renderElementChanges({ add: { ports: [], allows: [], endpoints: [], bridges: [] }, delete: { ...missing, ports: [], allows: [], bridges: [] } });
  const lines = script.trimEnd().split('\n');
  const error = await runNft(script, { netns: name }).then(() => null, (err: unknown) => err);
  t.ok(isNftError(error), 'an NftError');
  if (!isNftError(error)) return;
  t.equal(error.line, lines.length - 1, 'it names the failing line');
  t.equal(error.inputLine, '\t172.17.0.99 . tcp . 99 . 9999');
  t.match(error.message, /^nft: Could not process rule: No such file or directory \(line \d+: 172\.17\.0\.99 \. tcp \. 99 \. 9999\)$/);
  t.equal(error.exitCode, 1);
  t.same(await installed(name), before, 'none of the earlier additions happened');

  const syntax = `${renderElementChanges(diffElements(BASE, withApi))}add element inet dockwarden allow4_00 { what }\n`;
  const syntaxError = await runNft(syntax, { netns: name }).then(() => null, (err: unknown) => err);
  t.ok(isNftError(syntaxError) && syntaxError.line === syntax.trimEnd().split('\n').length, 'a syntax error on the last line');
  t.same(await installed(name), before, 'unchanged');

  // A full replacement the kernel refuses (overlapping source blocks of one port, built by hand) leaves the old table whole.
  const dns = BASE.allows.find((a) => a.port === 53)!;
  const overlapping: FirewallPlan = { ...BASE, allows: [...BASE.allows, { ...dns, source: parseCidr('198.51.100.7/32')! }] };
  await t.rejects(runNft(renderTable(overlapping), { netns: name }), /File exists/);
  t.same(await installed(name), before, 'the previous table, rules and elements, is intact');
});

t.test('hostile inputs are refused before anything is rendered or run', async (t) => {
  const name = netns(t);
  await runNft(renderTable(BASE), { netns: name });
  const before = await installed(name);
  t.throws(() => container('x', [['0.0.0.0 } ; flush ruleset ; add element inet dockwarden allow4 {', 80, '172.17.0.2', 80, 'any']]),
    FirewallInputError, 'a host ip that is not an address');
  t.throws(() => container('x', [['0.0.0.0', 80, '172.17.0.2 . tcp . 22', 80, 'any']]),
    FirewallInputError, 'a network address that is not an address');
  t.throws(() => renderTable({ ...BASE, bridges: ['docker0"; flush ruleset; "'] }), UnsafeValueError,
    'an interface name outside the alphabet');
  await t.rejects(runNft('', { netns: '../../proc/1/ns/net' }), /invalid network namespace name/);
  t.same(await installed(name), before, 'nothing changed');
});

t.test('drift: what the kernel holds differs from what was applied', async (t) => {
  const name = netns(t);
  await runNft(renderTable(BASE), { netns: name });
  const applied = await installed(name);
  inNetns(name, 'nft', 'delete', 'element', 'inet', 'dockwarden', 'endpoints4', '{ 172.17.0.2 . tcp . 8443 . 443 }');
  inNetns(name, 'nft', 'add', 'element', 'inet', 'dockwarden', 'allow4_01', '{ 10.0.0.1-10.0.0.3 . tcp . 1 . 10.0.0.0/8 }');
  const drifted = await installed(name);
  const diff = diffElements(drifted.plan, BASE);
  t.same(diff.add.endpoints.map((e) => e.addr.text), ['172.17.0.2'], 'the deleted element is missing');
  t.same(drifted.foreign.length, 1, 'an element the plan cannot express is reported');
  t.equal(drifted.skeleton, applied.skeleton);

  inNetns(name, 'nft', 'flush', 'chain', 'inet', 'dockwarden', 'decide4');
  t.not((await installed(name)).skeleton, applied.skeleton, 'an emptied chain changes the skeleton');
  await runNft(renderTable(BASE), { netns: name });
  const repaired = await installed(name);
  t.ok(sameElements(repaired.plan, BASE) && repaired.skeleton === applied.skeleton && repaired.foreign.length === 0,
    'a full load repairs everything');
});

t.test('the backend: drift against the plan, element by element, foreign elements and edited rules', async (t) => {
  const name = netns(t);
  const backend = nftablesBackend({ netns: name });
  const withApi = planAll([WEB, DNS, API], { defaultDeny: true, bridges: BRIDGES });
  await backend.replace(withApi);
  t.equal(await backend.drift(withApi), null, 'what was applied, read back through every set of the layout');
  t.equal(await backend.drift(BASE), 'set elements differ from what dockwarden applied', 'another plan differs');
  inNetns(name, 'nft', 'delete', 'element', 'inet', 'dockwarden', 'openwildcard4', '{ tcp . 443 }');
  t.equal(await backend.drift(withApi), 'set elements differ from what dockwarden applied', 'an open port closed by hand');
  await backend.replace(withApi);
  inNetns(name, 'nft', 'add', 'element', 'inet', 'dockwarden', 'allow4_17', '{ 0.0.0.0/0 . tcp . 8080 . 198.51.100.99/32 }');
  t.equal(await backend.drift(withApi), '1 element(s) dockwarden did not add', 'an allowance in the wrong shard (8080 is shard 16) is foreign');
  await backend.replace(withApi);
  // The chains as written are read after the replace, beside what follows it: a check waits for that read.
  t.equal(await backend.drift(withApi), null, 'the chains as written recorded');
  inNetns(name, 'nft', 'flush', 'chain', 'inet', 'dockwarden', 'allow4_16');
  t.equal(await backend.drift(withApi), 'chains or rules were edited', "an emptied shard chain");
  await backend.replace(withApi);
  t.equal(await backend.drift(withApi), null, 'a replace repairs it');
});

t.test('the backend with a guard: both tables in each write, the guard compared, written again once its process ends; a guard it cannot write does not hold ours back', async (t) => {
  const name = netns(t);
  const pids: number[] = [];
  const session = new NftSession({ netns: name, started: (pid) => pids.push(pid) });
  t.teardown(() => session.close());
  const refused: unknown[] = [];
  const backend = nftablesBackend({ netns: name, guard: session, guardRefused: (error) => refused.push(error) });
  const guard = async (): Promise<InstalledTable | null> => listTable({ netns: name }, GUARD_TABLE);
  const withApi = planAll([WEB, DNS, API], { defaultDeny: true, bridges: BRIDGES });
  await backend.replace(BASE);
  t.ok(sameElements((await guard())!.plan, BASE), 'the guard holds the plan');
  await backend.update(diffElements(BASE, withApi), () => withApi);
  t.ok(sameElements((await guard())!.plan, withApi) && sameElements((await installed(name)).plan, withApi), 'an update changes both tables');
  t.equal(await backend.drift(withApi), null, 'both as applied');
  t.equal(pids.length, 1, 'every write through one nft process');

  process.kill(pids[0]!, 'SIGKILL');
  await until(async () => ((await guard()) === null ? true : undefined), 10_000, 'the guard gone with its process');
  t.equal(await backend.drift(withApi), `table ${GUARD_TABLE} is gone with the nft process that held it`);
  await backend.replace(withApi);
  t.ok(sameElements((await guard())!.plan, withApi), 'a replace writes it again, through a new process');
  t.equal(pids.length, 2);
  t.equal(await backend.drift(withApi), null);

  // A guard table that is not ours (no owner): ours is still written, alone; the trouble is told.
  session.close();
  inNetns(name, 'nft', 'add', 'table', 'inet', 'dockwarden_guard');
  const other = new NftSession({ netns: name });
  t.teardown(() => other.close());
  const closed = nftablesBackend({ netns: name, guard: other, guardRefused: (error) => refused.push(error) });
  await closed.replace(BASE);
  t.ok(sameElements((await installed(name)).plan, BASE), 'our table written');
  t.equal(refused.length, 1, 'the guard refused, and said');
  t.equal(await closed.drift(BASE), null, 'no drift made of a guard known not written (no repair loop)');
});

t.test('a drift check reads the kernel while events change it: nothing held, no drift made up, a real one still found', async (t) => {
  const name = netns(t);
  const real = nftablesBackend({ netns: name });
  const reads: string[] = [];
  let readHeld: Promise<void> | null = null;
  // The read of a big table takes seconds; here it is made to begin only after the events below have
  // gone through, so the kernel it reads is surely not what was desired when the check began.
  const backend: FirewallBackend = {
    ...real,
    async drift(expected, changing) {
      reads.push(`read ${expected.ports.length} ports`);
      const held = readHeld;
      readHeld = null;
      if (held) await held;
      return real.drift(expected, changing);
    },
  };
  const enforcer = new FirewallEnforcer(backend, pino({ level: 'silent' }), { defaultDeny: true, bridges: BRIDGES });
  const tracked = (elements: ContainerElements) => {
    const facts = makeFacts({ id: elements.containerId, name: elements.containerId });
    return { facts, decision: decisionOf(facts, { firewall: { elements, error: null } }) };
  };
  await Promise.all([WEB, DNS].map((c) => enforcer.apply(tracked(c))));
  t.equal(await enforcer.repairDrift(), null);

  let release = () => {};
  readHeld = new Promise((resolve) => (release = resolve));
  reads.length = 0;
  const check = enforcer.repairDrift();
  await enforcer.apply(tracked(API)); // a start: 3 ports more
  await enforcer.forget('web'); // a stop: 2 fewer
  release();
  t.equal(await check, null, 'the kernel read after the events differs from the snapshot only in elements they changed');
  t.same(reads, ['read 3 ports'], 'one read, outside the queue, not redone');
  t.ok(sameElements((await installed(name)).plan, planAll([DNS, API], { defaultDeny: true, bridges: BRIDGES })), 'the events are in force');

  // An element no event touched, deleted by hand during a check that events overlap: found and repaired.
  readHeld = new Promise((resolve) => (release = resolve));
  const second = enforcer.repairDrift();
  await enforcer.apply(tracked(WEB));
  inNetns(name, 'nft', 'delete', 'element', 'inet', 'dockwarden', 'endpoints4', '{ 172.18.0.3 . tcp . 53 . 53 }');
  release();
  t.equal(await second, 'set elements differ from what dockwarden applied');
  t.equal(await enforcer.repairDrift(), null, 'repaired');
});

t.test('timing, measured in a namespace', async (t) => {
  const name = netns(t);
  const synthetic = (count: number): ContainerElements[] => Array.from({ length: count }, (_, i) =>
    container(`c${i}`, [['0.0.0.0', 10000 + i, `172.16.${i >> 8}.${i & 255}`, 80, ['198.51.100.0/24']]]));
  const time = async (script: string): Promise<number> => {
    const start = performance.now();
    await runNft(script, { netns: name });
    return performance.now() - start;
  };
  const median = (values: number[]): number => values.toSorted((a, b) => a - b)[values.length >> 1]!;

  for (const containers of [334, 1000]) {
    const plan = planAll(synthetic(containers), { defaultDeny: true, bridges: BRIDGES });
    const elements = plan.ports.length + plan.allows.length + plan.endpoints.length;
    const loads = [];
    for (let i = 0; i < 5; i++) loads.push(await time(renderTable(plan)));
    t.comment(`full table load, ${containers} containers = ${elements} elements: median ${median(loads).toFixed(1)} ms`);
    t.ok(median(loads) < 5000, `${elements} elements load in under 5 s`);
  }
  const all = synthetic(1001);
  const before = planAll(all.slice(0, 1000), { defaultDeny: true, bridges: BRIDGES });
  const after = planAll(all, { defaultDeny: true, bridges: BRIDGES });
  const start = renderElementChanges(diffElements(before, after));
  const stop = renderElementChanges(diffElements(after, before));
  const transactions = [];
  for (let i = 0; i < 20; i++) transactions.push(await time(start), await time(stop));
  t.comment(`one container (3 elements) start or stop on a 3,000-element table: median ${median(transactions).toFixed(1)} ms ` +
    '(including `ip netns exec`)');
  t.ok(median(transactions) < 1000, 'a container transaction takes well under a second');
  t.ok(sameElements((await installed(name)).plan, before));
});

// --- Real packets: client → server (the table, a Docker-like DNAT) → containers, all in namespaces.

t.test('real packets: allowed sources connect, others do not, revocation cuts live connections', async (t) => {
  assertClientNetFree(); // refuses when 198.51.100.0/24 is routed on the host (these namespaces never route it there)
  const { server, client, ctrA, ctrB } = packetTopology(t, 'dwnft');
  // What Docker does for `-p 8080:80` and `-p 8081:80`; 8082 is a process on the server itself (the docker-proxy path).
  await runNft(`table ip dockersim {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local tcp dport 8080 dnat to 198.51.100.130:80
    fib daddr type local tcp dport 8081 dnat to 198.51.100.194:80
  }
}
`, { netns: server });
  await startIn(t, ctrA, ['-e', SERVER_JS, '198.51.100.130', '80']);
  await startIn(t, ctrB, ['-e', SERVER_JS, '198.51.100.194', '80']);
  await startIn(t, server, ['-e', SERVER_JS, '198.51.100.1', '8082']);

  const reach = async () => {
    const probes = { a: 8080, b: 8081, p: 8082 };
    const results = await Promise.all(Object.entries(probes).flatMap(([key, port]) =>
      ['10', '11'].map(async (host) => [`${key}${host}`, await connects(client, `198.51.100.${host}`, port)] as const)));
    return Object.fromEntries(results);
  };
  t.same(await reach(), { a10: true, a11: true, b10: true, b11: true, p10: true, p11: true }, 'without dockwarden everyone gets in');

  const baseline = planAll([], { defaultDeny: true, bridges: ['docker0'] });
  await runNft(renderTable(baseline), { netns: server });
  t.same(await reach(), { a10: false, a11: false, b10: false, b11: false, p10: true, p11: true },
    'the baseline closes DNATed ports not yet judged ("br-*" and @bridges); a local listener is outside it');

  const a = container('a', [['0.0.0.0', 8080, '198.51.100.130', 80, ['198.51.100.10']]]);
  const b = container('b', [['0.0.0.0', 8081, '198.51.100.194', 80, ['198.51.100.11']]]);
  const proxy = container('p', [['198.51.100.1', 8082, '198.51.100.1', 8082, ['198.51.100.10']]]);
  const judged = planAll([a, b, proxy], { defaultDeny: true, bridges: ['docker0'] });
  await runNft(renderElementChanges(diffElements(baseline, judged)), { netns: server });
  t.same(await reach(), { a10: true, a11: false, b10: false, b11: true, p10: true, p11: false },
    'each port admits exactly its allowed source, judged by host port, DNATed or local');

  const holder = await startIn(t, client, ['-e', CLIENT_JS, '198.51.100.1', '8080', '198.51.100.10', 'hold']);
  const narrowed = planAll([container('a', [['0.0.0.0', 8080, '198.51.100.130', 80, []]]), b, proxy], { defaultDeny: true, bridges: ['docker0'] });
  await runNft(renderElementChanges(diffElements(judged, narrowed)), { netns: server });
  holder.stdin!.write('go\n');
  const code = await new Promise<number | null>((resolve) => holder.on('exit', resolve));
  t.equal(code, 4, 'an established connection gets no answer once its allowance is revoked');
  t.equal(await connects(client, '198.51.100.10', 8080), false, 'and cannot reconnect');

  const everyone = planAll([
    container('a', [['0.0.0.0', 8080, '198.51.100.130', 80, []]]),
    container('b', [['0.0.0.0', 8081, '198.51.100.194', 80, 'any']]),
    container('p', [['198.51.100.1', 8082, '198.51.100.1', 8082, 'any']]),
  ], { defaultDeny: true, bridges: ['docker0'] });
  await runNft(renderElementChanges(diffElements(narrowed, everyone)), { netns: server });
  t.same(await reach(), { a10: false, a11: false, b10: true, b11: true, p10: true, p11: true },
    '`any`: every source reaches a port open on every address (openwildcard4) and one open on one address (open4)');

  const open = planAll([a, b, proxy], { defaultDeny: false, bridges: ['docker0'] });
  await runNft(renderTable(open), { netns: server });
  const unjudged = planAll([b, proxy], { defaultDeny: false, bridges: ['docker0'] });
  await runNft(renderElementChanges(diffElements(open, unjudged)), { netns: server });
  t.same((await reach()).a11, true, 'ports.default allow: an unjudged DNATed port stays open');
});
