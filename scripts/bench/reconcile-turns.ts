/**
 * reconcile-turns (scripts/bench/README.md): the start-up reconcile of two builds taking turns (ABBA),
 * against the containers an engine already runs (e.g. 1,000 held on a dockerd of one's own in a network
 * namespace), with daemon-rss's two floors measured after each pair: list + inspect every container
 * (8 at once) + `nft list table`, and the same with each running container's processes and mount table
 * read by this checkout's readers. Per turn: the daemon's `reconciled` ms, its main thread's CPU and
 * the whole process's from `connected to Docker` to `reconciled` (/proc, 10 ms ticks), dockerd's CPU
 * meanwhile (DWR_DOCKERD_PID), VmRSS 3 s after, and where the time went: the first and the last `container
 * judged` line after `connected to Docker` (as this process received them; the last judged to
 * `reconciled` is the firewall's and the bridge filter's replace); DWR_THREADS=1 prints each thread's CPU; DWR_B_NODE_ARGS: node
 * flags for B's daemon (e.g. A's build with one flag more). A warm-up turn
 * of A first. With a PROFILE_DIR, one turn of each under `--cpu-prof` instead (use tsc builds for names).
 * Run inside the engine's network namespace, as root:
 *   nsenter --net=/run/netns/NS env DW_TEST_DOCKER_HOST=unix:///…/docker.sock DWR_DOCKERD_PID=… \
 *     node --import @isaacs/ts-node-temp-fork-for-pr-2009/import scripts/bench/reconcile-turns.ts A_MAIN_JS B_MAIN_JS [PAIRS] [PROFILE_DIR]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { main, median, portsPolicy, reconcileFloorMs, say, sleep, spawnDaemon } from './lib.js';

const [A = '', B = '', PAIRS = '4', PROFILE = ''] = process.argv.slice(2);
const DOCKERD = process.env.DWR_DOCKERD_PID ?? '';
/** Node flags for B's daemon only (B may be A's build: what a flag alone changes). */
const B_NODE_ARGS = (process.env.DWR_B_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
const POLICY = portsPolicy(20000, 1000);

const ticks = (path: string): number => {
  const f = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

await main('reconcile-turns', 3000, { hostTable: false, docker: false, daemon: false }, async () => {
  const turn = async (cli: string, nodeArgs: string[] = []) => {
    const d = spawnDaemon({ policy: POLICY, cli, nodeArgs });
    const connected = await d.waitFor((l) => l.msg === 'connected to Docker', 60_000);
    const main0 = ticks(`/proc/${d.pid}/task/${d.pid}/stat`);
    const all0 = ticks(`/proc/${d.pid}/stat`);
    const dockerd0 = DOCKERD ? ticks(`/proc/${DOCKERD}/stat`) : 0;
    const r = await d.waitFor((l) => l.msg === 'reconciled', 600_000);
    const mainCpu = ticks(`/proc/${d.pid}/task/${d.pid}/stat`) - main0;
    const allCpu = ticks(`/proc/${d.pid}/stat`) - all0;
    const dockerdCpu = DOCKERD ? ticks(`/proc/${DOCKERD}/stat`) - dockerd0 : 0;
    if (process.env.DWR_THREADS) {
      const threads = readdirSync(`/proc/${d.pid}/task`).map((tid) => `${readFileSync(`/proc/${d.pid}/task/${tid}/comm`, 'utf8').trim()}=${ticks(`/proc/${d.pid}/task/${tid}/stat`)}`);
      say(`threads (CPU ms since spawn): ${threads.join(' ')}`);
    }
    // Phases, from the times this process received the lines (the daemon's log carries no timestamps).
    const judged = d.logs.filter((e) => e.line.msg === 'container judged');
    const after = (rx: number | undefined): number => (rx === undefined ? NaN : Math.round(rx - connected.rx));
    const phases = { firstJudged: after(judged[0]?.rx), lastJudged: after(judged.at(-1)?.rx), reconciled: after(r.rx) };
    await sleep(3000);
    const rssMiB = Math.round(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${d.pid}/status`, 'utf8'))?.[1]) / 102.4) / 10;
    await d.stop();
    return { ms: Number(r.line.ms), mainCpu, allCpu, dockerdCpu, rssMiB, n: Number(r.line.containers), ...phases };
  };
  if (PROFILE) {
    for (const cli of [A, B]) say(`profile ${cli}: ${JSON.stringify(await turn(cli, ['--cpu-prof', `--cpu-prof-dir=${PROFILE}/${cli === A ? 'A' : 'B'}`]))}`);
    return;
  }
  await turn(A); // warm-up: the table in place, caches warm
  const res: Record<'A' | 'B', Array<Awaited<ReturnType<typeof turn>>>> = { A: [], B: [] };
  const floors: number[] = [];
  const floorsP: number[] = [];
  for (let p = 0; p < Number(PAIRS); p++) {
    const order: Array<'A' | 'B'> = p % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
    for (const k of order) {
      const r = await turn(k === 'A' ? A : B, k === 'A' ? [] : B_NODE_ARGS);
      res[k].push(r);
      say(`pair ${p} ${k}: ${r.ms} ms, main CPU ${r.mainCpu} ms, process CPU ${r.allCpu} ms, dockerd CPU ${r.dockerdCpu} ms, RSS 3 s after ${r.rssMiB} MiB, ${r.n} containers; judged first at ${r.firstJudged} ms, last at ${r.lastJudged}, reconciled at ${r.reconciled}; load ${load()}`);
    }
    floors.push(Math.round(await reconcileFloorMs(false)));
    floorsP.push(Math.round(await reconcileFloorMs(true)));
    say(`pair ${p} floors: inspect ${floors.at(-1)} ms, with procfs ${floorsP.at(-1)} ms; load ${load()}`);
  }
  const fi = median(floors);
  const fp = median(floorsP);
  for (const k of ['A', 'B'] as const) {
    const ms = median(res[k].map((r) => r.ms));
    say(`${k} (${k === 'A' ? A : B}): reconcile median ${ms} ms [${res[k].map((r) => r.ms).join(', ')}], main CPU median ${median(res[k].map((r) => r.mainCpu))} ms [${res[k].map((r) => r.mainCpu).join(', ')}], process CPU median ${median(res[k].map((r) => r.allCpu))}, dockerd CPU median ${median(res[k].map((r) => r.dockerdCpu))}, RSS median ${median(res[k].map((r) => r.rssMiB))} MiB; judged first at ${median(res[k].map((r) => r.firstJudged))} ms, last at ${median(res[k].map((r) => r.lastJudged))}, reconciled at ${median(res[k].map((r) => r.reconciled))} (medians); ×${(ms / fi).toFixed(2)} inspect floor, ×${(ms / fp).toFixed(2)} procfs floor`);
  }
  say(`floors: inspect median ${fi} [${floors.join(', ')}], procfs median ${fp} [${floorsP.join(', ')}]`);
});
