/**
 * kill-latency (scripts/bench/README.md, issue #4): Docker's `start` event of a container holding a forbidden
 * capability (`--cap-add SYS_ADMIN`) → its `die` event, after the daemon killed it, over
 * DW_BENCH_KILLS (default 60) containers started one at a time. Both times are dockerd's own
 * (`timeNano`), so the figure is exactly what a victim container gets to run.
 *
 * Floor, per sample, in the same run: the bench itself does what the daemon must at least do — on
 * the `start` event of a container the policy excuses (label `dw-bench.floor`), one inspect and one
 * kill API call — and the floor is that container's `start` → `die`, on the same clock. So the floor
 * holds event delivery + inspect + kill, and the ratio is what the daemon's queue, facts (image
 * inspect, /proc, realpath), evaluation and restart-policy update add. Target: p99 ≤ 2 × floor p99.
 */
import {
  api, assertRunning, cleanupContainersOnExit, fmtStats, main, now, printJson, ratio, removeTableOnExit, say, sleep, spawnDaemon, stats, subscribeEvents, timed,
  BENCH_LABEL, TEST_IMAGE, type DockerEventSeen,
} from './lib.js';

const KILLS = Number(process.env.DW_BENCH_KILLS ?? 60);
const WARMUP = 3;
const TARGET = 2;
const FLOOR_LABEL = 'dw-bench.floor';

const POLICY = `version: 1
containers:
  capabilities: { forbidden: [SYS_ADMIN], action: kill }
  exceptions:
    - { match: { label: { ${FLOOR_LABEL}: "1" } }, allow: [capabilities] }
`;

if (!Number.isInteger(KILLS) || KILLS < 1 || KILLS > 500) throw new Error('DW_BENCH_KILLS must be 1..500');

await main('kill-latency', 170, { hostTable: true, docker: true, daemon: true }, async () => {
  cleanupContainersOnExit();
  const seen = new Map<string, { start?: DockerEventSeen; die?: DockerEventSeen }>();
  const floorIds = new Set<string>();
  const floorParts = new Map<string, { inspect: number; kill: number }>();
  await subscribeEvents((event) => {
    const entry = seen.get(event.id);
    if (!entry || (event.action !== 'start' && event.action !== 'die') || entry[event.action]) return;
    entry[event.action] = event;
    // The floor's reaction starts the moment its start event is here, as the daemon's does.
    if (event.action === 'start' && floorIds.has(event.id)) void reactAsFloor(event.id);
  });
  const reactAsFloor = async (id: string) => {
    const [, inspectMs] = await timed(() => api.getContainer(id).inspect());
    const [, killMs] = await timed(() => api.getContainer(id).kill());
    floorParts.set(id, { inspect: inspectMs, kill: killMs });
  };

  removeTableOnExit();
  const daemon = spawnDaemon({ policy: POLICY });
  await daemon.waitFor((l) => l.msg === 'reconciled');
  say(`# kill-latency: daemon pid ${daemon.pid} ready; ${WARMUP} warm-up + ${KILLS} measured kills, each followed by one floor sample`);

  const run = async (floor: boolean): Promise<{ id: string; start: DockerEventSeen; die: DockerEventSeen }> => {
    assertRunning();
    const container = await api.createContainer({
      Image: TEST_IMAGE,
      Cmd: ['sleep', '3600'],
      Labels: { [BENCH_LABEL]: String(process.pid), ...(floor && { [FLOOR_LABEL]: '1' }) },
      HostConfig: { CapAdd: ['SYS_ADMIN'] },
    });
    seen.set(container.id, {});
    if (floor) floorIds.add(container.id);
    await container.start();
    const deadline = now() + 15_000;
    for (;;) {
      const entry = seen.get(container.id)!;
      // the floor's parts are recorded when its kill call returns, which may be just after the die event
      if (entry.start && entry.die && (!floor || floorParts.has(container.id))) return { id: container.id, start: entry.start, die: entry.die };
      if (now() > deadline) throw new Error(`${floor ? 'floor' : 'daemon'} container ${container.id.slice(0, 12)} was not killed within 15 s`);
      await sleep(1);
    }
  };

  const latency: number[] = [];
  const floor: number[] = [];
  const delivery: number[] = [];
  const inspect: number[] = [];
  const kill: number[] = [];
  const t0 = now();
  for (let i = 0; i < WARMUP + KILLS; i++) {
    const victim = await run(false);
    await sleep(50); // one thing at a time: the daemon idle before the floor sample
    const own = await run(true);
    await sleep(50);
    if (i < WARMUP) continue;
    latency.push(victim.die.eventMs - victim.start.eventMs);
    floor.push(own.die.eventMs - own.start.eventMs);
    const parts = floorParts.get(own.id)!;
    delivery.push(own.start.rxMs - own.start.eventMs);
    inspect.push(parts.inspect);
    kill.push(parts.kill);
  }
  const killed = daemon.logs.filter((e) => e.line.msg === 'container killed').length;
  const L = stats(latency);
  const F = stats(floor);
  const r99 = ratio(L.p99, F.p99);
  say(`kill-latency: ${KILLS} kills in ${((now() - t0) / 1000).toFixed(1)} s (daemon logged ${killed} kills, incl. ${WARMUP} warm-up)`);
  say(`  start → die, killed by the daemon  ${fmtStats(L)}`);
  say(`  floor: start → die, bench's own    ${fmtStats(F)}`);
  say(`    event delivery                   ${fmtStats(stats(delivery))}`);
  say(`    inspect                          ${fmtStats(stats(inspect))}`);
  say(`    kill API call                    ${fmtStats(stats(kill))}`);
  say(`  ratio p99/floor_p99 = ${r99} (target ≤ ${TARGET}: ${r99 <= TARGET ? 'met' : 'NOT met'});  p50/floor_p50 = ${ratio(L.p50, F.p50)}`);
  printJson('kill-latency', {
    kills: KILLS,
    latency_ms: L,
    floor_ms: F,
    floor_parts_ms: { delivery: stats(delivery), inspect: stats(inspect), kill: stats(kill) },
    ratio_p99: r99,
    ratio_p50: ratio(L.p50, F.p50),
    target_ratio_p99: TARGET,
    met: r99 <= TARGET,
  });
});
