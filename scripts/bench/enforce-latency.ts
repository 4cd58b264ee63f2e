/**
 * enforce-latency (scripts/bench/README.md): Docker's `start` event time → the container's allowance is in force
 * in the kernel, over DW_BENCH_STARTS (default 100) container starts, one at a time, while the daemon runs.
 *
 * How "in force" is observed: a prober in the test client namespace (source 198.51.100.10, which the
 * policy allows) opens a new TCP connection to the container's published port every ~1 ms from the
 * moment this process receives the `start` event. Until the daemon commits the allowance, the
 * fail-closed baseline drops the SYN (the attempt hangs); the first attempt that gets an answer
 * (connected, or refused by the container) was sent after the commit. The commit time is taken as the
 * send time of the first attempt that got through, so the figure is an upper bound; the send time of
 * the last attempt that was dropped is a lower bound (both are reported; the gap is one attempt spacing,
 * ~1.2 ms, unless the prober itself was not scheduled on time on the busy 2-core machine). Afterwards, outside the timed path, the bench confirms with
 * `nft -j list set inet dockwarden allow4_NN` (the port's shard) that the allowance is in the set.
 *
 * Why not `nft monitor`: nft 1.0.6 (Debian 12) crashes (SIGSEGV, after printing garbage) on the first
 * element of a concatenated interval set — the `allow4_NN` sets are such sets — so it stops reporting after
 * the first container. Why not poll `nft -j list set`: each look is a process spawn plus a set dump
 * (~4 ms of CPU) competing with the daemon's own `nft` on a 2-core machine, at a ~4 ms resolution.
 * Why not only the daemon's `container judged` log line: the log enforcer writes it *before* the
 * firewall enforcer plans and runs nft, so it marks "decided", not "applied"; it is recorded to split
 * the latency into event → judged (queue, inspect, evaluate) and judged → in force (plan, render, nft).
 *
 * Floor, per start, measured by the bench in the same run right after each sample: this process's
 * own event delivery (timeNano → its subscriber received the `start` event) + one container inspect +
 * one nft transaction adding the same three elements the daemon adds (wildcard4, allow4_NN, endpoints4) to a
 * chain-less scratch table `inet dwbench_<pid>` in the host namespace (no chain: it never sees a
 * packet), spawned and timed by a small plain-node worker the way the daemon's runTool spawns nft (see
 * lib.ts nftWorker: spawning from this much bigger process would inflate the floor).
 * Target: latency p99 / floor p99 ≤ 1.5.
 *
 * DW_BENCH_BACKGROUND (default 0, at most 1,000): that many containers run from before the daemon
 * starts to the end (issue #18: the event-to-enforced p99 with N running the same as with few), judged
 * by the start-up reconcile: the first 100 publish a port outside the policy's range, the next 30 are
 * on the default bridge without ports, the rest `--network none` (lib.ts mixedSpecs; the test bridge
 * is a /24, and the measured starts take 103 of its addresses).
 */
import { createInterface } from 'node:readline';
import { HOST_ADDR } from '../../test/helpers/netns.js';
import { allowSetName, allowShard } from '../../src/adapters/nftables/render.js';
import {
  api, assertRunning, cleanupContainersOnExit, client, createScratchTable, daemonJudged, describeMix, elementTransaction, fmtStats, main, mixedSpecs, portsPolicy, nftJson, nftWorker,
  now, printJson, ratio, removeTableOnExit, say, sleep, spawnDaemon, spawnInClient, startContainers, stats, subscribeEvents, timed,
  BENCH_LABEL, TEST_IMAGE, type DockerEventSeen,
} from './lib.js';

const STARTS = Number(process.env.DW_BENCH_STARTS ?? 100);
const BACKGROUND = Number(process.env.DW_BENCH_BACKGROUND ?? 0);
/** Background containers publish ports from here on, outside the policy's range (closed to everyone). */
const BACKGROUND_PORT = 22000;
// The test bridge is a /24 and the measured starts take 103 of its addresses.
const BACKGROUND_PUBLISHED = Math.min(BACKGROUND, 100);
const BACKGROUND_BRIDGED = Math.min(BACKGROUND - BACKGROUND_PUBLISHED, 30);
const WARMUP = 3;
const BASE_PORT = 20000;
const ALLOWED = '198.51.100.10';
const TARGET = 1.5;
const SPACING_MS = 1;

const POLICY = portsPolicy(BASE_PORT, 1000, ALLOWED);

/**
 * Runs in the client namespace. `go PORT LIMIT_MS`: a new connection attempt every SPACING ms until
 * one is answered; prints `{port, passSent, outcome, lastDropSent, attempts}` (wall-clock ms).
 */
const PROBER = `
const net = require('node:net');
const [host, source, spacing] = process.argv.slice(1);
const now = () => performance.timeOrigin + performance.now();
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, portText, limitText] = line.split(' ');
  if (cmd !== 'go') return;
  const port = Number(portText);
  const limit = now() + Number(limitText);
  const all = [];
  let done = false;
  const finish = (why) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    // Attempts sent just before the first answered one may still be answered: give them 5 ms.
    setTimeout(() => {
      for (const a of all) a.socket.destroy();
      const passed = all.filter((a) => a.state === 'connected' || a.state === 'refused').sort((x, y) => x.sent - y.sent);
      const first = passed[0];
      const dropped = all.filter((a) => a.state === 'pending' && (!first || a.sent < first.sent));
      const out = { port, why, attempts: all.length, passSent: first ? first.sent : null, outcome: first ? first.state : null,
        lastDropSent: dropped.length ? Math.max(...dropped.map((a) => a.sent)) : null,
        errors: all.filter((a) => !['pending', 'connected', 'refused', 'closed'].includes(a.state)).length };
      process.stdout.write(JSON.stringify(out) + '\\n');
    }, 5);
  };
  const fire = () => {
    if (now() > limit) return finish('timeout');
    const a = { sent: now(), state: 'pending', socket: null };
    a.socket = net.connect({ host, port, localAddress: source });
    all.push(a);
    a.socket.once('connect', () => { a.state = 'connected'; a.socket.destroy(); finish('pass'); });
    a.socket.once('error', (e) => { a.state = e.code === 'ECONNREFUSED' ? 'refused' : String(e.code); if (a.state === 'refused') finish('pass'); });
    // Keep the number of open sockets bounded: a SYN not answered in 200 ms was dropped.
    setTimeout(() => { if (a.state === 'pending') { a.socket.destroy(); } }, 200).unref();
  };
  fire();
  const timer = setInterval(fire, Number(spacing));
});
`;

interface ProbeResult {
  readonly port: number;
  readonly why: 'pass' | 'timeout';
  readonly attempts: number;
  readonly passSent: number | null;
  readonly outcome: string | null;
  readonly lastDropSent: number | null;
  readonly errors: number;
}

if (!Number.isInteger(STARTS) || STARTS < 1 || STARTS > 500) throw new Error('DW_BENCH_STARTS must be 1..500');
if (!Number.isInteger(BACKGROUND) || BACKGROUND < 0 || BACKGROUND > 1000) throw new Error('DW_BENCH_BACKGROUND must be 0..1000');

// Starting and removing a background container takes ~0.4 s here (2 cores).
await main('enforce-latency', 170 + Math.ceil(1.2 * BACKGROUND), { hostTable: true, docker: true, daemon: true }, async () => {
  cleanupContainersOnExit();
  if (BACKGROUND > 0) {
    const [, startMs] = await timed(() => startContainers(mixedSpecs(BACKGROUND, BACKGROUND_PUBLISHED, BACKGROUND_BRIDGED, BACKGROUND_PORT), 10));
    say(`# enforce-latency: ${BACKGROUND} background containers running (${describeMix(BACKGROUND, BACKGROUND_PUBLISHED, BACKGROUND_BRIDGED)}; started in ${(startMs / 1000).toFixed(1)} s)`);
  }
  const scratch = await createScratchTable();
  const nft = nftWorker();
  const c = client([ALLOWED]);
  const prober = spawnInClient(c, PROBER, [HOST_ADDR, ALLOWED, String(SPACING_MS)]);
  const results = new Map<number, (r: ProbeResult) => void>();
  createInterface({ input: prober.stdout! }).on('line', (line) => {
    const r = JSON.parse(line) as ProbeResult;
    results.get(r.port)?.(r);
  });

  // Our own subscriber: each start's timeNano, the floor's delivery part, and the prober's go signal.
  const expected = new Map<string, number>(); // container id → its host port
  const startEvents = new Map<string, DockerEventSeen>();
  const probes = new Map<string, Promise<ProbeResult>>();
  await subscribeEvents((event) => {
    const port = expected.get(event.id);
    if (event.action !== 'start' || port === undefined || startEvents.has(event.id)) return;
    startEvents.set(event.id, event);
    probes.set(event.id, new Promise((resolve) => results.set(port, resolve)));
    prober.stdin!.write(`go ${port} 15000\n`);
  });

  removeTableOnExit();
  const daemon = spawnDaemon({ policy: POLICY });
  const ready = await daemon.waitFor((l) => l.msg === 'reconciled');
  say(`# enforce-latency: daemon pid ${daemon.pid} ready (start-up reconcile ${String(ready.line.ms)} ms); ${WARMUP} warm-up + ${STARTS} measured starts, one at a time`);
  await sleep(500);

  const latency: number[] = [];
  const latencyLow: number[] = [];
  const resolution: number[] = [];
  const eventToJudged: number[] = [];
  const judgedToInForce: number[] = [];
  const delivery: number[] = [];
  const inspect: number[] = [];
  const transaction: number[] = [];
  const floor: number[] = [];
  const outcomes = new Map<string, number>();
  const t0 = now();
  for (let i = 0; i < WARMUP + STARTS; i++) {
    const port = BASE_PORT + i;
    assertRunning();
    const container = await api.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['httpd', '-f', '-p', '80', '-h', '/var/www'],
      Labels: { [BENCH_LABEL]: String(process.pid) },
      ExposedPorts: { '80/tcp': {} },
      HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(port) }] } },
    });
    expected.set(container.id, port);
    try {
      assertRunning();
      await container.start();
    } catch (err) {
      await container.remove({ force: true }).catch(() => {});
      throw err;
    }
    const id = container.id;
    await until(() => probes.has(id), 10_000, `no start event for ${id.slice(0, 12)}`);
    const probe = await probes.get(id)!;
    const event = startEvents.get(id)!;
    if (probe.why !== 'pass' || probe.passSent === null) {
      throw new Error(`port ${port}: the allowed source never got through in 15 s (${probe.attempts} attempts); daemon log tail:\n${daemon.logs.slice(-8).map((e) => JSON.stringify(e.line)).join('\n')}`);
    }
    const judged = await daemon.waitFor(daemonJudged(id), 10_000);
    const shard = allowSetName(4, allowShard(port));
    const set = JSON.stringify(nftJson(['list', 'set', 'inet', 'dockwarden', shard]));
    if (!set.includes(`"tcp",${port},"${ALLOWED}"`)) throw new Error(`port ${port}: got through, but ${shard} lacks the allowance: ${set.slice(0, 400)}`);

    // The floor of this sample.
    const [inspected, inspectMs] = await timed(() => api.getContainer(id).inspect());
    const addr = Object.values(inspected.NetworkSettings.Networks)[0]?.IPAddress || '10.255.255.2';
    const nftMs = await nft.run(elementTransaction(scratch, port, addr, 'add'));
    await nft.run(elementTransaction(scratch, port, addr, 'delete'));

    if (i >= WARMUP) {
      const inForce = probe.passSent;
      latency.push(inForce - event.eventMs);
      // The commit lies between the last attempt that was dropped and the first that got through.
      latencyLow.push(Math.max(probe.lastDropSent ?? event.rxMs, event.rxMs) - event.eventMs);
      resolution.push(probe.lastDropSent === null ? 0 : inForce - probe.lastDropSent);
      outcomes.set(probe.outcome ?? '?', (outcomes.get(probe.outcome ?? '?') ?? 0) + 1);
      const judgedAt = Date.parse(String(judged.line.time));
      eventToJudged.push(judgedAt - event.eventMs);
      judgedToInForce.push(inForce - judgedAt);
      delivery.push(event.rxMs - event.eventMs);
      inspect.push(inspectMs);
      transaction.push(nftMs);
      floor.push(event.rxMs - event.eventMs + inspectMs + nftMs);
    }
    await sleep(50); // let the daemon go idle: each sample is one start, not a burst
  }
  const elapsed = (now() - t0) / 1000;

  const firstTryPasses = resolution.filter((r) => r === 0).length;
  const trouble = daemon.logs.filter((e) => (e.line.level ?? 0) >= 40).map((e) => String(e.line.msg));
  const L = stats(latency);
  const F = stats(floor);
  const r99 = ratio(L.p99, F.p99);
  const r50 = ratio(L.p50, F.p50);
  const r90 = ratio(L.p90, F.p90);
  const Low = stats(latencyLow);
  say(`enforce-latency: ${STARTS} starts in ${elapsed.toFixed(1)} s (after ${WARMUP} warm-up starts, not counted), ${BACKGROUND} background containers running`);
  say(`  event time → allowance in force    ${fmtStats(L)}`);
  say(`    lower bound (last dropped try)    ${fmtStats(Low)}  → p99/floor_p99 ${ratio(Low.p99, F.p99)}`);
  say(`    event → daemon logged "judged"    ${fmtStats(stats(eventToJudged))}  (pino time: 1 ms resolution)`);
  say(`    "judged" → in force               ${fmtStats(stats(judgedToInForce))}`);
  say(`    probe resolution (late by ≤)      ${fmtStats(stats(resolution))}  (${firstTryPasses} passed on the first attempt; outcomes ${JSON.stringify(Object.fromEntries(outcomes))})`);
  say(`  floor = delivery + inspect + nft   ${fmtStats(F)}`);
  say(`    event delivery                    ${fmtStats(stats(delivery))}`);
  say(`    container inspect                 ${fmtStats(stats(inspect))}`);
  say(`    nft element transaction           ${fmtStats(stats(transaction))}`);
  say(`  ratio p99/floor_p99 = ${r99} (target ≤ ${TARGET}: ${r99 <= TARGET ? 'met' : 'NOT met'});  p90/floor_p90 = ${r90};  p50/floor_p50 = ${r50}`);
  if (STARTS < 100) say(`  note: with ${STARTS} samples p99 is the maximum: one outlier on either side moves the ratio`);
  if (firstTryPasses > 0) say(`  note: ${firstTryPasses} start(s) passed on the very first attempt: the allowance was in force before the bench saw the event (latency is an upper bound)`);
  if (trouble.length > 0) say(`  daemon warnings/errors during the run: ${trouble.length} (${[...new Set(trouble)].join('; ')})`);
  printJson('enforce-latency', {
    starts: STARTS,
    background_containers: BACKGROUND,
    latency_ms: L,
    latency_lower_bound_ms: Low,
    ratio_p99_lower_bound: ratio(Low.p99, F.p99),
    event_to_judged_ms: stats(eventToJudged),
    judged_to_in_force_ms: stats(judgedToInForce),
    probe_resolution_ms: stats(resolution),
    floor_ms: F,
    floor_parts_ms: { delivery: stats(delivery), inspect: stats(inspect), nft_transaction: stats(transaction) },
    ratio_p99: r99,
    ratio_p90: r90,
    ratio_p50: r50,
    target_ratio_p99: TARGET,
    met: r99 <= TARGET,
    daemon_warnings: trouble.length,
  });
});

async function until(check: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!check()) {
    if (now() > deadline) throw new Error(message);
    await sleep(1);
  }
}
