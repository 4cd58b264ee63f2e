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
 * drift check's read).
 */
import { spawn } from 'node:child_process';
import {
  api, cleanEnv, cleanupContainersOnExit, DAEMON_CLI, daemonEnv, daemonJudged, main, portsPolicy, median, memoryOf, nftJson, now, onCleanup, printJson, ratio,
  removeTableOnExit, say, sleep, spawnDaemon, startContainers, timed, type BenchDaemon, type ContainerSpec,
} from './lib.js';

const N = Number(process.env.DW_BENCH_RSS_CONTAINERS ?? 150);
const BASE_PORT = 20000;
const CONCURRENCY = 8; // src/app/daemon.ts CONCURRENCY

const POLICY = portsPolicy(BASE_PORT, 1000);
/** Issue #18: RSS idle ≤ 60 MB (10^6 bytes). */
const TARGET_IDLE_MIB = Math.round((60e6 / 2 ** 20) * 10) / 10;

if (!Number.isInteger(N) || N < 1 || N > 900) throw new Error('DW_BENCH_RSS_CONTAINERS must be 1..900');

await main('daemon-rss', 175 + N, { hostTable: true, docker: true, daemon: true }, async () => {
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
  const specs = Array.from({ length: N }, (_, i): ContainerSpec => ({ hostPort: BASE_PORT + i }));
  const [ids, startMs] = await timed(() => startContainers(specs, 10));
  await Promise.all(ids.map((id) => first.waitFor(daemonJudged(id), 60_000)));
  const allJudged = now();
  const periodicAfter = () => first.logs.filter((e) => e.line.msg === 'reconciled' && e.line.reason === 'periodic' && e.rx >= allJudged);
  for (const deadline = now() + 25_000; periodicAfter().length < 3; await sleep(100)) {
    if (now() > deadline) throw new Error('no three periodic reconciles within 25 s of the last judgement');
  }
  const periodicMs = periodicAfter().map((e) => Number(e.line.ms));
  const loaded = await sample(first);
  say(`daemon-rss: ${N} running containers (started in ${(startMs / 1000).toFixed(1)} s): RSS ${loaded.rssMiB} MiB (peak ${loaded.hwmMiB}); periodic reconcile ${periodicMs.join(', ')} ms`);

  // Reconcile floor: list + inspect all (concurrency 8) + one read of the table.
  const floors: number[] = [];
  for (let r = 0; r < 3; r++) {
    const [, t] = await timed(async () => {
      const list = await api.listContainers({ all: true });
      const queue = list.map((c) => c.Id);
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        for (let id = queue.pop(); id !== undefined; id = queue.pop()) await api.getContainer(id).inspect();
      }));
      nftJson(['list', 'table', 'inet', 'dockwarden']);
    });
    floors.push(t);
  }
  const floorReconcile = median(floors);
  await first.stop();

  // Restart with N running: the start-up reconcile (full replace of the kept table) and a fresh process's RSS.
  const second = spawnDaemon({ policy: POLICY });
  const startupN = await second.waitFor((l) => l.msg === 'reconciled', 60_000);
  await sleep(3000);
  const restarted = await sample(second);
  const trouble = [...first.logs, ...second.logs].filter((e) => (e.line.level ?? 0) >= 40).map((e) => String(e.line.msg));
  await second.stop();

  const periodicMedian = median(periodicMs);
  say(`daemon-rss: restarted with ${N} running: start-up reconcile ${String(startupN.line.ms)} ms; RSS ${restarted.rssMiB} MiB (peak ${restarted.hwmMiB})`);
  say(`  memory: idle ${idle.rssMiB} MiB (target ≤ 60 MB = ${TARGET_IDLE_MIB} MiB: ${idle.rssMiB <= TARGET_IDLE_MIB ? 'met' : 'not met'}) = ${ratio(idle.rssMiB, floorRss)}× bare node (${floorRss} MiB); with ${N}: ${loaded.rssMiB} MiB (${ratio(loaded.rssMiB, floorRss)}×), +${Math.round(((loaded.rssMiB - idle.rssMiB) / N) * 1024)} KiB per container after the start burst, +${Math.round(((restarted.rssMiB - idle.rssMiB) / N) * 1024)} KiB in a freshly started daemon`);
  say(`  reconcile with ${N}: periodic ${periodicMedian} ms (median of ${periodicMs.join(', ')}), start-up ${String(startupN.line.ms)} ms; floor (list + ${N + foreign} inspects ×${CONCURRENCY} + nft list) ${floorReconcile} ms → ratio periodic/floor ${ratio(periodicMedian, floorReconcile)}, start-up/floor ${ratio(Number(startupN.line.ms), floorReconcile)}`);
  if (trouble.length > 0) say(`  daemon warnings/errors: ${trouble.length} (${[...new Set(trouble)].join('; ')})`);
  printJson('daemon-rss', {
    cli: DAEMON_CLI,
    node_options: daemonEnv().NODE_OPTIONS ?? '',
    malloc_mmap_threshold: daemonEnv().MALLOC_MMAP_THRESHOLD_ ?? '',
    containers: N,
    other_containers: foreign,
    rss_mib: { floor_bare_node: floorRss, idle: idle.rssMiB, with_n: loaded.rssMiB, restarted_with_n: restarted.rssMiB },
    peak_mib: { idle: idle.hwmMiB, with_n: loaded.hwmMiB, restarted_with_n: restarted.hwmMiB },
    ratio_rss_idle_over_floor: ratio(idle.rssMiB, floorRss),
    target_idle_mib: TARGET_IDLE_MIB,
    met_idle: idle.rssMiB <= TARGET_IDLE_MIB,
    ratio_rss_n_over_floor: ratio(loaded.rssMiB, floorRss),
    kib_per_container: Math.round(((loaded.rssMiB - idle.rssMiB) / N) * 1024),
    kib_per_container_restarted: Math.round(((restarted.rssMiB - idle.rssMiB) / N) * 1024),
    reconcile_ms: { startup_idle: Number(startup0.line.ms), periodic_with_n: periodicMs, startup_with_n: Number(startupN.line.ms) },
    reconcile_floor_ms: floorReconcile,
    ratio_periodic_over_floor: ratio(periodicMedian, floorReconcile),
    ratio_startup_over_floor: ratio(Number(startupN.line.ms), floorReconcile),
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
