/**
 * startup (scripts/bench/README.md, issue #15's recovery after SIGKILL): spawn of `dockwarden run` →
 * `READY=1` on a notify socket of the bench's own, which the daemon sends only once its start-up
 * reconcile has judged every container and replaced the ruleset. Each start follows a SIGKILL of the
 * previous daemon (as in the chaos soak, the ruleset and state dir stay), DW_BENCH_STARTUP_RUNS (default 10)
 * times with none of our containers and again with DW_BENCH_STARTUP_CONTAINERS (default 20) running,
 * each publishing a port. Split per start: spawn → first log line (node and the modules loaded, the
 * policy read) and the start-up reconcile's own time (its `reconciled` line).
 *
 * Floor, in the same run: spawn → first byte on stdout of a bare `node -e` (node's own start).
 * Target: recovery after SIGKILL p99 ≤ 2 s (issue #15; systemd's RestartSec comes on top).
 * The daemon runs with the unit's NODE_OPTIONS (lib.ts daemonEnv); DW_BENCH_CLI: another build (a "before" figure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { bindNotifySocket } from '../../test/helpers/notify-socket.js';
import {
  DAEMON_CLI, cleanEnv, cleanupContainersOnExit, daemonEnv, fmtStats, main, portsPolicy, now, onCleanup, printJson, Refusal, removeTableOnExit, say, scratchDir, startContainers, stats,
  writeConfig, type ContainerSpec,
} from './lib.js';

const STARTS = Number(process.env.DW_BENCH_STARTUP_RUNS ?? 10);
const N = Number(process.env.DW_BENCH_STARTUP_CONTAINERS ?? 20);
const TARGET_MS = 2000;
const BASE_PORT = 21000;

const POLICY = portsPolicy(BASE_PORT, 100);

if (!Number.isInteger(STARTS) || STARTS < 1 || STARTS > 100) throw new Error('DW_BENCH_STARTUP_RUNS must be 1..100');
if (!Number.isInteger(N) || N < 1 || N > 100) throw new Error('DW_BENCH_STARTUP_CONTAINERS must be 1..100');

interface Start {
  readonly readyMs: number;
  readonly firstLineMs: number;
  readonly reconcileMs: number;
}

await main('startup', 170, { hostTable: true, docker: true, daemon: true }, async () => {
  if (!existsSync(DAEMON_CLI)) throw new Refusal(`${DAEMON_CLI} missing: npm run build`);
  cleanupContainersOnExit();
  removeTableOnExit();
  const notify = bindNotifySocket();
  onCleanup('notify socket', () => notify.close());
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const config = writeConfig(dir, policyFile, join(dir, 'state'));

  let child: ChildProcess | null = null;
  onCleanup('daemon under test', () => child?.kill('SIGKILL'));

  /** One start: spawn → READY=1 of that pid; then SIGKILL, as the soak does. */
  const startOnce = async (): Promise<Start> => {
    const t0 = now();
    const c = spawn(process.execPath, [DAEMON_CLI, 'run', '--config', config], { env: daemonEnv({ NOTIFY_SOCKET: notify.path }), stdio: ['ignore', 'pipe', 'inherit'] });
    child = c;
    let firstLine = NaN;
    let reconcileMs = NaN;
    createInterface({ input: c.stdout! }).on('line', (text) => {
      if (Number.isNaN(firstLine)) firstLine = now();
      try {
        const line = JSON.parse(text) as { msg?: string; ms?: number; reason?: string };
        if (line.msg === 'reconciled' && line.reason === 'start-up') reconcileMs = Number(line.ms);
      } catch {
        // not JSON: only timing matters here
      }
    });
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    await notify.next((f) => f.includes('READY=1') && f.includes(`MAINPID=${c.pid}`), 60_000);
    const ready = now();
    c.kill('SIGKILL');
    await exited;
    return { readyMs: ready - t0, firstLineMs: firstLine - t0, reconcileMs };
  };

  /** Floor: a bare node's own start, spawn → its first byte on stdout. */
  const bareOnce = async (): Promise<number> => {
    const t0 = now();
    const c = spawn(process.execPath, ['-e', 'process.stdout.write("x")'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((r) => c.stdout!.once('data', () => r()));
    const t = now() - t0;
    await new Promise<void>((r) => c.once('exit', () => r()));
    return t;
  };

  const series = async (label: string): Promise<{ starts: Start[]; floor: number[] }> => {
    await startOnce(); // warm-up: the first start installs the ruleset and the page cache
    const starts: Start[] = [];
    const floor: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      floor.push(await bareOnce());
      starts.push(await startOnce());
    }
    const ready = stats(starts.map((s) => s.readyMs));
    say(`startup ${label}: spawn → READY ${fmtStats(ready)}   target p99 ≤ ${TARGET_MS} ms ${ready.p99 <= TARGET_MS ? '✔' : '✘'}`);
    say(`  spawn → first log line ${fmtStats(stats(starts.map((s) => s.firstLineMs)))}`);
    say(`  start-up reconcile (its own time) ${fmtStats(stats(starts.map((s) => s.reconcileMs)))}`);
    say(`  floor: bare node spawn → first output ${fmtStats(stats(floor))}`);
    return { starts, floor };
  };

  const idle = await series('with 0 bench containers');
  const specs = Array.from({ length: N }, (_, i): ContainerSpec => ({ hostPort: BASE_PORT + i }));
  await startContainers(specs, 10);
  const loaded = await series(`with ${N} running containers`);

  const summary = (s: { starts: Start[]; floor: number[] }) => ({
    ready_ms: stats(s.starts.map((x) => x.readyMs)),
    first_log_line_ms: stats(s.starts.map((x) => x.firstLineMs)),
    startup_reconcile_ms: stats(s.starts.map((x) => x.reconcileMs)),
    floor_bare_node_ms: stats(s.floor),
  });
  printJson('startup', { cli: DAEMON_CLI, node_options: daemonEnv().NODE_OPTIONS ?? '', starts: STARTS, containers: N, target_p99_ms: TARGET_MS, idle: summary(idle), with_n: summary(loaded) });
});
