/**
 * exposure-window (scripts/bench/README.md): a denied prober hammers the published ports of containers while they
 * start; count the TCP connections that completed. The policy allows only 198.51.100.10 on ports
 * 20000–20999 (`ports.default: deny`); the prober connects from 198.51.100.11, which nothing allows.
 *
 * Phases, each with its own containers started in batches of 10, host ports 20000+i, each serving
 * HTTP (busybox httpd as PID 1, so a SYN that gets through completes a handshake):
 *   daemon    DW_BENCH_CONTAINERS (default 200) containers start under a running daemon → target 0.
 *             Then, as a check that the containers really serve, the allowed source must get through.
 *   baseline  the daemon stopped, our table removed, only `dockwarden firewall baseline` installed
 *             (with the daemon's state dir from the first phase, as at a reboot) → target 0.
 *   control   no dockwarden table at all, 30 containers → must be > 0, else the prober is broken
 *             (the bench then exits 1).
 *   fresh-baseline (informational) `firewall baseline` with an empty state dir — a host where the
 *             daemon never ran — 30 containers: shows whether the boot baseline alone covers Docker's
 *             bridge when it does not know its name yet (it assumes docker0 and br-*; the test engine's
 *             default bridge is dwtest0).
 *
 * The prober (node, inside the client namespace): four loops per port, each one connection attempt at
 * a time with a 100 ms connect timeout (a SYN that passes is answered in well under 1 ms on an idle
 * veth; the margin is for a machine busy starting containers). A port is "hot" from just before its
 * batch is created until 4 s after its batch started: hot loops retry at once after a drop and 10 ms
 * after a refusal (before Docker's DNAT exists the host refuses); cold loops try once a second.
 * Bounded: the prober stops when told, and by itself after 150 s.
 *
 * Ground truth beside the prober's count: a counter in a scratch table `inet dwbench_<pid>` (one chain
 * at postrouting priority 300, policy accept, it only counts) of SYNs from the denied source that were
 * DNATed and left for a container — i.e. got past every filter. It catches a SYN that passed but whose
 * answer the prober gave up on. Target 0 in the daemon and baseline phases.
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { reaches } from '../../test/helpers/probe.js';
import { HOST_ADDR } from '../../test/helpers/netns.js';
import {
  BenchBroken, cleanupContainersOnExit, cli, client, daemonJudged, main, now, printJson, removeBenchContainers, removeTable,
  removeTableOnExit, say, scratchDir, nftScript, nftJson, onCleanup, sleep, spawnDaemon, spawnInClient, startContainers, writeConfig, nftTableExists,
  type ContainerSpec,
} from './lib.js';
import { writeFileSync } from 'node:fs';
import type { NetnsClient } from '../../test/helpers/netns.js';

const CONTAINERS = Number(process.env.DW_BENCH_CONTAINERS ?? 200);
const CONTROL_CONTAINERS = 30;
const BATCH = 10;
const BASE_PORT = 20000;
const ALLOWED = '198.51.100.10';
const DENIED = '198.51.100.11';
const HOT_MS = 4000;

const POLICY = `version: 1
ports:
  default: deny
  rules:
    - { name: bench, match: { port: ${BASE_PORT}-${BASE_PORT + 999}/tcp }, allow: [${ALLOWED}] }
`;

const PROBER = `
const net = require('node:net');
const [host, source, firstText, countText, capText] = process.argv.slice(1);
const FIRST = Number(firstText), N = Number(countText), TIMEOUT = 100, LOOPS = 4;
const now = () => performance.timeOrigin + performance.now();
const hotUntil = new Float64Array(N);
const perPort = new Uint32Array(N);
const wake = Array.from({ length: N }, () => new Set());
const res = { attempts: 0, connected: 0, refused: 0, dropped: 0, other: {}, hits: [] };
let stopping = false;
const t0 = now();
function attempt(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: source });
    let done = false;
    const end = (r) => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(r); };
    const t = setTimeout(() => end('dropped'), TIMEOUT);
    s.once('connect', () => end('connected'));
    s.once('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)));
  });
}
function pause(i, ms) {
  if (ms <= 0) return new Promise((r) => setImmediate(r));
  return new Promise((r) => { const t = setTimeout(done, ms); function done() { clearTimeout(t); wake[i].delete(done); r(); } wake[i].add(done); });
}
async function loop(i) {
  const port = FIRST + i;
  while (!stopping) {
    const sent = now();
    const r = await attempt(port);
    res.attempts++; perPort[i]++;
    if (r === 'connected') { res.connected++; if (res.hits.length < 1000) res.hits.push({ port, t: sent }); }
    else if (r === 'refused') res.refused++;
    else if (r === 'dropped') res.dropped++;
    else res.other[r] = (res.other[r] || 0) + 1;
    const hot = now() < hotUntil[i];
    await pause(i, hot ? (r === 'refused' ? 10 : 0) : 1000);
  }
}
const loops = [];
for (let i = 0; i < N; i++) for (let k = 0; k < LOOPS; k++) loops.push(loop(i));
let finished = false;
async function stop() {
  if (finished) return; finished = true;
  stopping = true;
  for (const set of wake) for (const w of [...set]) w();
  await Promise.all(loops);
  const counts = [...perPort].sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ ...res, seconds: (now() - t0) / 1000, perPort: { min: counts[0], median: counts[counts.length >> 1], max: counts[counts.length - 1] } }) + '\\n');
  process.exit(0);
}
setTimeout(stop, Number(capText)).unref();
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, list] = line.split(' ');
  if (cmd === 'stop') void stop();
  if (cmd === 'hot') for (const p of list.split(',')) { const i = Number(p) - FIRST; if (i >= 0 && i < N) { hotUntil[i] = now() + ${HOT_MS}; for (const w of [...wake[i]]) w(); } }
});
process.stdout.write('ready\\n');
`;

interface ProbeSummary {
  attempts: number;
  connected: number;
  refused: number;
  dropped: number;
  other: Record<string, number>;
  hits: Array<{ port: number; t: number }>;
  seconds: number;
  perPort: { min: number; median: number; max: number };
}

interface PhaseResult {
  readonly phase: string;
  readonly containers: number;
  readonly startSeconds: number;
  readonly probe: ProbeSummary;
  /** SYNs from the denied source that got past every filter (kernel counter). */
  readonly passedSyns: number;
}

/** Reads the ground-truth counter (set before the first phase). */
let counterRead: (() => number) | null = null;

if (!Number.isInteger(CONTAINERS) || CONTAINERS < 10 || CONTAINERS > 900) throw new Error('DW_BENCH_CONTAINERS must be 10..900');

await main('exposure-window', 175, { hostTable: true, docker: true, daemon: true }, async () => {
  cleanupContainersOnExit();
  removeTableOnExit();
  const c = client([ALLOWED, DENIED]);
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const stateDir = join(dir, 'state');
  const results: PhaseResult[] = [];
  counterRead = await createSynCounter();

  // ---- daemon
  const daemon = spawnDaemon({ policy: POLICY, stateDir });
  await daemon.waitFor((l) => l.msg === 'reconciled');
  const specs = Array.from({ length: CONTAINERS }, (_, i): ContainerSpec => ({ hostPort: BASE_PORT + i }));
  const a = await phase('daemon', c, specs);
  results.push(a);
  // The containers serve, and the allowed source gets in once they are judged: the zero above is not vacuous.
  const ids = a.ids;
  await Promise.all(ids.map((id) => daemon.waitFor(daemonJudged(id), 30_000)));
  const samples = [0, Math.floor(CONTAINERS / 2), CONTAINERS - 1].map((i) => BASE_PORT + i);
  const allowedOk: boolean[] = [];
  for (const port of samples) allowedOk.push(await eventually(() => reaches(c, ALLOWED, HOST_ADDR, port), 10_000));
  const deniedAfter: boolean[] = [];
  for (const port of samples) deniedAfter.push(await reaches(c, DENIED, HOST_ADDR, port));
  if (allowedOk.some((ok) => !ok)) throw new BenchBroken(`the allowed source did not reach ports ${samples.join(', ')} after the daemon judged them (${allowedOk.join(', ')}): the containers or the network path are broken`);
  const trouble = daemon.logs.filter((e) => (e.line.level ?? 0) >= 40).map((e) => String(e.line.msg));
  await daemon.stop();
  await removeBenchContainers();
  removeTable();
  report(a);

  // ---- baseline only (state from the daemon: it knows Docker's bridges)
  const config = writeConfig(dir, policyFile, stateDir);
  const baselineOut = cli(['firewall', 'baseline'], config).trim();
  const b = await phase('baseline', c, specs);
  results.push(b);
  await removeBenchContainers();
  removeTable();
  report(b, baselineOut);

  // ---- control: no dockwarden table at all
  if (nftTableExists('inet', 'dockwarden')) throw new Error('table inet dockwarden still there before the control phase');
  const controlSpecs = specs.slice(0, CONTROL_CONTAINERS);
  const k = await phase('control (no table)', c, controlSpecs);
  results.push(k);
  await removeBenchContainers();
  report(k);

  // ---- informational: baseline on a host where the daemon never ran (empty state dir)
  const freshConfig = writeConfig(scratchDir(), policyFile, join(dir, 'fresh-state'));
  const freshOut = cli(['firewall', 'baseline'], freshConfig).trim();
  const f = await phase('fresh-baseline (informational)', c, controlSpecs);
  results.push(f);
  await removeBenchContainers();
  removeTable();
  report(f, freshOut);

  const [daemonPhase, baselinePhase, controlPhase, freshPhase] = results as [PhaseResult, PhaseResult, PhaseResult, PhaseResult];
  say(`exposure-window: completed connections from the denied source — daemon ${daemonPhase.probe.connected} (target 0), baseline ${baselinePhase.probe.connected} (target 0), control ${controlPhase.probe.connected} (must be > 0), fresh-state baseline ${freshPhase.probe.connected} (informational)`);
  say(`  SYNs from the denied source past every filter (kernel counter) — daemon ${daemonPhase.passedSyns}, baseline ${baselinePhase.passedSyns}, control ${controlPhase.passedSyns}, fresh-state baseline ${freshPhase.passedSyns}`);
  say(`  allowed source after judgement: ${allowedOk.map((ok, i) => `${samples[i]} ${ok ? 'ok' : 'FAILED'}`).join(', ')}; denied source after judgement: ${deniedAfter.some(Boolean) ? 'GOT IN' : 'refused'} on all three`);
  if (freshPhase.probe.connected > 0) say(`  note: with no saved state the boot baseline covers docker0 and br-* only; this engine's default bridge is ${process.env.DW_TEST_BRIDGE ?? 'dwtest0'} (dockerd --bridge), so its published ports stay open until the daemon has run once`);
  if (trouble.length > 0) say(`  daemon warnings/errors: ${trouble.length} (${[...new Set(trouble)].join('; ')})`);
  const met = daemonPhase.probe.connected + daemonPhase.passedSyns + baselinePhase.probe.connected + baselinePhase.passedSyns === 0 && !deniedAfter.some(Boolean);
  printJson('exposure-window', {
    containers: CONTAINERS,
    phases: Object.fromEntries(results.map((r) => [r.phase.split(' ')[0], { containers: r.containers, start_seconds: r.startSeconds, completed: r.probe.connected, syns_past_filters: r.passedSyns, attempts: r.probe.attempts, refused: r.probe.refused, dropped: r.probe.dropped, other: r.probe.other, attempts_per_port: r.probe.perPort, probe_seconds: Math.round(r.probe.seconds * 10) / 10 }])),
    allowed_source_ok: allowedOk.every(Boolean),
    target_completed: 0,
    met,
    control_ok: controlPhase.probe.connected > 0,
  });
  if (controlPhase.probe.connected === 0 || controlPhase.passedSyns === 0) throw new BenchBroken('the control phase (no dockwarden table) completed no connection: the prober does not work, so the zeros above mean nothing');
});

/** The ground-truth counter: SYNs from DENIED, DNATed, leaving for a container. */
async function createSynCounter(): Promise<() => number> {
  const table = `dwbench_${process.pid}`;
  await nftScript(`table inet ${table} {
\tchain count {
\t\ttype filter hook postrouting priority 300; policy accept;
\t\tip saddr ${DENIED} ct status dnat tcp flags & (syn | ack) == syn counter
\t}
}
`);
  onCleanup(`nft table inet ${table}`, () => nftScript(`delete table inet ${table}\n`));
  return () => {
    const json = JSON.stringify(nftJson(['list', 'chain', 'inet', table, 'count']));
    const packets = /"counter":\{"packets":(\d+)/.exec(json)?.[1];
    if (packets === undefined) throw new Error(`no counter in ${json.slice(0, 300)}`);
    return Number(packets);
  };
}

async function phase(name: string, c: NetnsClient, specs: readonly ContainerSpec[]): Promise<PhaseResult & { ids: string[] }> {
  const before = counterRead!();
  const first = specs[0]!.hostPort;
  const prober = spawnInClient(c, PROBER, [HOST_ADDR, DENIED, String(first), String(specs.length), '150000']);
  const lines = createInterface({ input: prober.stdout! });
  const summary = new Promise<ProbeSummary>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line !== 'ready') resolve(JSON.parse(line) as ProbeSummary);
    });
    prober.once('exit', (code) => setTimeout(() => reject(new Error(`prober exited ${code} without a summary`)), 100));
  });
  summary.catch(() => {});
  await sleep(600); // every port probed at least once before anything starts
  const t0 = now();
  const ids = await startContainers(specs, BATCH, (batch) => prober.stdin!.write(`hot ${batch.map((s) => s.hostPort).join(',')}\n`));
  const startSeconds = Math.round((now() - t0) / 100) / 10;
  await sleep(HOT_MS); // the last batch stays hot for its whole window
  prober.stdin!.write('stop\n');
  const probe = await summary;
  return { phase: name, containers: specs.length, startSeconds, probe, ids, passedSyns: counterRead!() - before };
}

function report(r: PhaseResult, note?: string): void {
  const p = r.probe;
  say(`exposure-window [${r.phase}]: ${r.containers} containers started in ${r.startSeconds} s; ${p.attempts} attempts in ${p.seconds.toFixed(1)} s (per port min ${p.perPort.min} / median ${p.perPort.median} / max ${p.perPort.max}): completed ${p.connected} (kernel: ${r.passedSyns} SYNs got past the filters), refused ${p.refused}, dropped ${p.dropped}${Object.keys(p.other).length ? `, other ${JSON.stringify(p.other)}` : ''}${note ? ` — ${note}` : ''}`);
  if (p.connected > 0) say(`  first completed connections: ${p.hits.slice(0, 5).map((h) => `port ${h.port}`).join(', ')}`);
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}
