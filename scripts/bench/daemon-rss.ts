/**
 * daemon-rss (scripts/bench/README.md, "scale: reconcile time and memory with N running containers"): the daemon's
 * resident memory (VmRSS of the node process, /proc/<pid>/status; VmHWM = its peak) idle with none of
 * our containers, and with DW_BENCH_RSS_CONTAINERS (default 150) running containers that each publish
 * a port; plus the reconcile time the daemon itself logs (`reconciled`, `ms`): periodic reconciles with
 * N running (reconcile.intervalSeconds: 5), and the start-up reconcile of a restarted daemon with N.
 *
 * Floors, measured in the same run: memory — a bare `node -e 'setInterval(…)'` process; reconcile —
 * what any reconcile must do at least, done by the bench with the daemon's concurrency (8): list the
 * containers, inspect every one, and read our table once (`nft -j list table inet dockwarden`, the
 * drift check's read). Target (issue #18): the start-up reconcile within 2× that floor; RSS with
 * 1,000 containers ≤ 100 MB. A second floor, not the target's, adds what the checks require of each
 * running container beyond its inspect, read by the daemon's own readers: the status of every process
 * in its cgroup (capabilities, users) and its mount table (read-only root, mount sources).
 *
 * The containers (lib.ts mixedSpecs): DW_BENCH_RSS_PUBLISHED (default 150) publish a port,
 * DW_BENCH_RSS_BRIDGED (default 50) are on the default bridge without ports, the rest `--network none`,
 * DW_BENCH_RSS_BOUND (default 0) of those with a host directory bind-mounted (as most hosts' containers
 * have a volume or a bind: each such sync maps it through the host's mount table).
 * DW_BENCH_RSS_RESTARTS (default 1): restarts measured with N running. DW_BENCH_RSS_COMPARE_CLI: as
 * many restarts, taking turns, of another build (a before figure with the same containers, same run).
 * DW_BENCH_RSS_PROFILE=DIR: one more restart, not counted, under `--cpu-prof` (the profile lands in
 * DIR when the daemon stops).
 */
import { spawn } from 'node:child_process';
import {
  api, cleanEnv, DAEMON_CONCURRENCY, reconcileFloorMs, cleanupContainersOnExit, DAEMON_CLI, daemonEnv, daemonJudged, describeMix, main, mixedSpecs, portsPolicy, median, memoryOf, now, onCleanup, printJson, ratio,
  removeTableOnExit, say, sleep, spawnDaemon, startContainers, timed, type BenchDaemon,
} from './lib.js';

const N = Number(process.env.DW_BENCH_RSS_CONTAINERS ?? 150);
const PUBLISHED = Math.min(N, Number(process.env.DW_BENCH_RSS_PUBLISHED ?? 150));
const BRIDGED = Math.min(N - PUBLISHED, Number(process.env.DW_BENCH_RSS_BRIDGED ?? 50));
const BOUND = Math.min(N - PUBLISHED - BRIDGED, Number(process.env.DW_BENCH_RSS_BOUND ?? 0));
const RESTARTS = Number(process.env.DW_BENCH_RSS_RESTARTS ?? 1);
const PROFILE_DIR = process.env.DW_BENCH_RSS_PROFILE ?? '';
const COMPARE_CLI = process.env.DW_BENCH_RSS_COMPARE_CLI ?? '';
const TARGET_RECONCILE_RATIO = 2;
const TARGET_RSS_1K_MB = 100;
const BASE_PORT = 20000;

const POLICY = portsPolicy(BASE_PORT, 1000);
/** Issue #18: RSS idle ≤ 60 MB (10^6 bytes). */
const TARGET_IDLE_MIB = Math.round((60e6 / 2 ** 20) * 10) / 10;

if (!Number.isInteger(N) || N < 1 || N > 1000) throw new Error('DW_BENCH_RSS_CONTAINERS must be 1..1000');
if (!Number.isInteger(PUBLISHED) || PUBLISHED < 0 || !Number.isInteger(BRIDGED) || BRIDGED < 0 || PUBLISHED + BRIDGED > 250) throw new Error('DW_BENCH_RSS_PUBLISHED + DW_BENCH_RSS_BRIDGED must be 0..250 (a /24 bridge)');
if (!Number.isInteger(RESTARTS) || RESTARTS < 1 || RESTARTS > 10) throw new Error('DW_BENCH_RSS_RESTARTS must be 1..10');

// Starting and removing containers takes ~0.3 s each here; each start-up reconcile some more.
await main('daemon-rss', 175 + N * (1.2 + RESTARTS * (COMPARE_CLI ? 0.2 : 0.1)), { hostTable: true, docker: true, daemon: true }, async () => {
  cleanupContainersOnExit();
  removeTableOnExit();

  // Floor: a bare node process.
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: cleanEnv(), stdio: 'ignore' });
  onCleanup(`bare node pid ${bare.pid}`, () => bare.kill('SIGKILL'));
  await sleep(1500);
  const floorRss = memoryOf(bare.pid!).rssMiB;
  bare.kill('SIGKILL');

  const foreign = (await api.listContainers({ all: true })).length;

  // Idle: no container of ours.
  const first = spawnDaemon({ policy: POLICY, reconcileSeconds: 5 });
  const startup0 = await first.waitFor((l) => l.msg === 'reconciled');
  await sleep(3000);
  const idle = await sample(first);
  say(`daemon-rss: idle (0 bench containers; ${foreign} other container(s) on the engine): RSS ${idle.rssMiB} MiB (peak ${idle.hwmMiB}); start-up reconcile ${String(startup0.line.ms)} ms; bare node ${floorRss} MiB`);

  // N running containers.
  const [ids, startMs] = await timed(() => startContainers(mixedSpecs(N, PUBLISHED, BRIDGED, BASE_PORT, BOUND), 10));
  await Promise.all(ids.map((id) => first.waitFor(daemonJudged(id), 60_000)));
  const allJudged = now();
  const periodicAfter = () => first.logs.filter((e) => e.line.msg === 'reconciled' && e.line.reason === 'periodic' && e.rx >= allJudged);
  // 5 s apart, each taking longer with more containers (the engine's other containers too): three, or as many as came by the deadline.
  const waitS = 25 + 0.06 * (N + foreign);
  for (const deadline = now() + waitS * 1000; periodicAfter().length < 3 && now() < deadline; await sleep(100));
  if (periodicAfter().length === 0) throw new Error(`no periodic reconcile within ${waitS} s of the last judgement`);
  const periodicMs = periodicAfter().map((e) => Number(e.line.ms));
  const loaded = await sample(first);
  say(`daemon-rss: ${N} running containers (${describeMix(N, PUBLISHED, BRIDGED, BOUND)}; started in ${(startMs / 1000).toFixed(1)} s): RSS ${loaded.rssMiB} MiB (peak ${loaded.hwmMiB}); periodic reconcile ${periodicMs.join(', ')} ms`);

  await first.stop();

  // Reconcile floor, with no daemon running: list + inspect all (concurrency 8) + one read of the table (left in place);
  // the second floor adds each running container's processes and mount table.
  const floors: number[] = [];
  const floorsProcfs: number[] = [];
  for (let r = 0; r < 3; r++) {
    floors.push(await reconcileFloorMs(false));
    floorsProcfs.push(await reconcileFloorMs(true));
  }
  const floorReconcile = median(floors);
  const floorProcfs = median(floorsProcfs);
  say(`daemon-rss: reconcile floor (list + ${N + foreign} inspects ×${DAEMON_CONCURRENCY} + nft list, no daemon running) ${floors.map((f) => f.toFixed(0)).join(', ')} ms; with each container's processes and mount table ${floorsProcfs.map((f) => f.toFixed(0)).join(', ')} ms`);

  // Restart with N running: the start-up reconcile (full replace of the kept table) and a fresh process's RSS.
  const trouble = first.logs.filter((e) => (e.line.level ?? 0) >= 40).map((e) => String(e.line.msg));
  const restart = async (cli: string, nodeArgs: readonly string[] = []): Promise<{ ms: number; memory: { rssMiB: number; hwmMiB: number } }> => {
    const d = spawnDaemon({ policy: POLICY, cli, nodeArgs });
    const startup = await d.waitFor((l) => l.msg === 'reconciled', 600_000); // a before build at 1,000 takes minutes
    await sleep(3000);
    const memory = await sample(d);
    trouble.push(...d.logs.filter((e) => (e.line.level ?? 0) >= 40).map((e) => String(e.line.msg)));
    await d.stop();
    say(`  restart of ${cli}${nodeArgs.length > 0 ? ` (${nodeArgs.join(' ')})` : ''}: start-up reconcile ${String(startup.line.ms)} ms, RSS ${memory.rssMiB} MiB`);
    return { ms: Number(startup.line.ms), memory };
  };
  const restarts: Array<Awaited<ReturnType<typeof restart>>> = [];
  const compared: Array<Awaited<ReturnType<typeof restart>>> = [];
  for (let r = 0; r < RESTARTS; r++) {
    restarts.push(await restart(DAEMON_CLI));
    if (COMPARE_CLI) compared.push(await restart(COMPARE_CLI));
  }
  if (PROFILE_DIR) {
    const profiled = await restart(DAEMON_CLI, ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`]);
    say(`daemon-rss: profiled restart (not counted): start-up reconcile ${profiled.ms} ms; profile in ${PROFILE_DIR}`);
  }
  const startupMs = restarts.map((r) => r.ms);
  const startupMedian = median(startupMs);
  const restarted = { rssMiB: median(restarts.map((r) => r.memory.rssMiB)), hwmMiB: Math.max(...restarts.map((r) => r.memory.hwmMiB)) };
  const comparedMs = compared.map((r) => r.ms);
  if (COMPARE_CLI) {
    say(`daemon-rss: ${COMPARE_CLI} restarted with ${N} running: start-up reconcile ${comparedMs.join(', ')} ms (median ${median(comparedMs)}, ${ratio(median(comparedMs), floorReconcile)}× the floor); RSS ${median(compared.map((r) => r.memory.rssMiB))} MiB`);
  }

  const periodicMedian = median(periodicMs);
  const startupRatio = ratio(startupMedian, floorReconcile);
  say(`daemon-rss: restarted with ${N} running: start-up reconcile ${startupMs.join(', ')} ms; RSS ${restarted.rssMiB} MiB (peak ${restarted.hwmMiB})`);
  say(`  memory: idle ${idle.rssMiB} MiB (target ≤ 60 MB = ${TARGET_IDLE_MIB} MiB: ${idle.rssMiB <= TARGET_IDLE_MIB ? 'met' : 'NOT met'}) = ${ratio(idle.rssMiB, floorRss)}× bare node (${floorRss} MiB); with ${N}: ${loaded.rssMiB} MiB (${ratio(loaded.rssMiB, floorRss)}×), +${Math.round(((loaded.rssMiB - idle.rssMiB) / N) * 1024)} KiB per container after the start burst, +${Math.round(((restarted.rssMiB - idle.rssMiB) / N) * 1024)} KiB in a freshly started daemon${N === 1000 ? `; target with 1,000 ≤ ${TARGET_RSS_1K_MB} MB: ${loaded.rssMiB * 1.048576 <= TARGET_RSS_1K_MB ? 'met' : 'NOT met'}` : ''}`);
  say(`  reconcile with ${N}: periodic ${periodicMedian} ms (median of ${periodicMs.join(', ')}), start-up ${startupMedian} ms (median of ${startupMs.length}); floor (list + ${N + foreign} inspects ×${DAEMON_CONCURRENCY} + nft list) ${floorReconcile} ms → ratio periodic/floor ${ratio(periodicMedian, floorReconcile)}, start-up/floor ${startupRatio} (target ≤ ${TARGET_RECONCILE_RATIO}: ${startupRatio <= TARGET_RECONCILE_RATIO ? 'met' : 'NOT met'}); with procfs ${floorProcfs} ms → start-up/that ${ratio(startupMedian, floorProcfs)}`);
  if (trouble.length > 0) say(`  daemon warnings/errors: ${trouble.length} (${[...new Set(trouble)].join('; ')})`);
  printJson('daemon-rss', {
    cli: DAEMON_CLI,
    node_options: daemonEnv().NODE_OPTIONS ?? '',
    malloc_mmap_threshold: daemonEnv().MALLOC_MMAP_THRESHOLD_ ?? '',
    containers: N,
    published: PUBLISHED,
    bridged: BRIDGED,
    other_containers: foreign,
    rss_mib: { floor_bare_node: floorRss, idle: idle.rssMiB, with_n: loaded.rssMiB, restarted_with_n: restarted.rssMiB },
    peak_mib: { idle: idle.hwmMiB, with_n: loaded.hwmMiB, restarted_with_n: restarted.hwmMiB },
    ratio_rss_idle_over_floor: ratio(idle.rssMiB, floorRss),
    target_idle_mib: TARGET_IDLE_MIB,
    met_idle: idle.rssMiB <= TARGET_IDLE_MIB,
    ratio_rss_n_over_floor: ratio(loaded.rssMiB, floorRss),
    kib_per_container: Math.round(((loaded.rssMiB - idle.rssMiB) / N) * 1024),
    kib_per_container_restarted: Math.round(((restarted.rssMiB - idle.rssMiB) / N) * 1024),
    reconcile_ms: { startup_idle: Number(startup0.line.ms), periodic_with_n: periodicMs, startup_with_n: startupMs },
    ...(COMPARE_CLI ? { compare_cli: COMPARE_CLI, compare_startup_with_n_ms: comparedMs, compare_ratio_startup_over_floor: ratio(median(comparedMs), floorReconcile) } : {}),
    reconcile_floor_ms: floorReconcile,
    reconcile_floor_procfs_ms: floorProcfs,
    ratio_startup_over_floor_procfs: ratio(startupMedian, floorProcfs),
    ratio_periodic_over_floor: ratio(periodicMedian, floorReconcile),
    ratio_startup_over_floor: startupRatio,
    target_ratio_startup: TARGET_RECONCILE_RATIO,
    met_startup: startupRatio <= TARGET_RECONCILE_RATIO,
    daemon_warnings: trouble.length,
  });
});

/** Median VmRSS and the last VmHWM of 5 samples over 2 s. */
async function sample(d: BenchDaemon): Promise<{ rssMiB: number; hwmMiB: number }> {
  const rss: number[] = [];
  let hwm = 0;
  for (let i = 0; i < 5; i++) {
    const m = memoryOf(d.pid);
    rss.push(m.rssMiB);
    hwm = m.hwmMiB;
    await sleep(500);
  }
  return { rssMiB: median(rss), hwmMiB: hwm };
}
