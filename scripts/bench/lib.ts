/**
 * Shared plumbing of the benchmarks (scripts/bench/README.md): preflight and refusal rules, a lock, cleanup that
 * runs on every exit path, statistics, the daemon under test as a child process, bench containers,
 * scratch network namespaces, and nft helpers. Everything a bench creates is registered with
 * `onCleanup` the moment it exists, and undone in reverse order on success, failure, SIGINT, SIGTERM
 * and the per-bench time limit.
 *
 * Names: containers carry the label `dw-bench=<pid>` (never `dw-test`: the integration tests remove
 * those); scratch namespaces are `dwb-<pid>-<n>`; the scratch nft table of the floors is
 * `inet dwbench_<pid>`. Leftovers of a bench that was SIGKILLed are reaped by the next bench.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { assertClientNetFree, createClient, type NetnsClient } from '../../test/helpers/netns.js';
import { DOCKER_SOCKET, TEST_IMAGE } from '../../test/helpers/docker.js';
import { unitEnvironment } from '../../test/helpers/unit-env.js';
import { readContainerProcesses } from '../../src/adapters/docker/container-processes.js';
import { mountPointsJudged } from '../../src/adapters/docker/read-facts.js';
import { readContainerMountTable } from '../../src/adapters/proc/mount-table.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'dist/cli/main.js');
export { DOCKER_SOCKET, TEST_IMAGE };
export const BENCH_LABEL = 'dw-bench';
const LOCK_FILE = '/run/dw-bench.lock';

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with Docker's timeNano). */
export const now = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ statistics and output

export interface Stats {
  readonly n: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile (p99 of 60 samples is the 60th, i.e. the maximum). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 100) / 100;
  return {
    n: s.length,
    min: r(s[0] ?? NaN),
    p50: r(percentile(s, 50)),
    p90: r(percentile(s, 90)),
    p99: r(percentile(s, 99)),
    max: r(s[s.length - 1] ?? NaN),
    mean: r(s.reduce((a, b) => a + b, 0) / (s.length || 1)),
  };
}

export const median = (samples: readonly number[]): number => stats(samples).p50;
export const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 1)} ms` : String(x));
export const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
export const fmtStats = (s: Stats): string => `p50 ${ms(s.p50)}  p90 ${ms(s.p90)}  p99 ${ms(s.p99)}  min ${ms(s.min)}  max ${ms(s.max)}  (n=${s.n})`;

/**
 * How sure a ratio of two percentiles is: the 95 % percentile-bootstrap interval of
 * `percentile(a, q) / percentile(b, q)`, each sample drawn again with replacement `resamples` times.
 * On this shared 2-core machine one `docker create` differs from the next by tens of ms, so a p50 of
 * 80 samples moves a ratio by ±0.05 between runs: the interval says whether a run can decide a target
 * at all. Seeded (xorshift32): the same samples give the same interval.
 */
export function ratioInterval(a: readonly number[], b: readonly number[], q: number, resamples = 2000, seed = 1): { lo: number; hi: number } {
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
  const redrawn = (s: readonly number[]): number[] => Array.from({ length: s.length }, () => s[Math.floor(random() * s.length)]!).sort((x, y) => x - y);
  const ratios = Array.from({ length: resamples }, () => percentile(redrawn(a), q) / percentile(redrawn(b), q)).sort((x, y) => x - y);
  return { lo: ratio(percentile(ratios, 2.5), 1), hi: ratio(percentile(ratios, 97.5), 1) };
}

/** A ratio against its target, with its interval: met when the whole interval is within it, missed when none of it is. */
export function verdict(value: number, interval: { lo: number; hi: number }, target: number): string {
  const decided = interval.hi <= target ? 'met' : interval.lo > target ? 'NOT met' : `${value <= target ? 'met' : 'NOT met'} by its point, undecided by its interval`;
  return `${value} (95 % interval ${interval.lo}–${interval.hi}; target ≤ ${target}: ${decided})`;
}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The one machine-readable line of a bench: `{"bench": NAME, ...}`. */
export function printJson(bench: string, result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench, ...result })}\n`);
}

/** Times `fn` with `now()`. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = now();
  const value = await fn();
  return [value, now() - t0];
}

// ------------------------------------------------------------------ cleanup, lock, main

const cleanups: Array<{ what: string; fn: () => unknown }> = [];
/** Set once SIGINT/SIGTERM/the time limit ends the bench: nothing new may be created from then on. */
let abortCode: number | null = null;

/** Thrown by anything that would create a resource after the bench was told to stop. */
export class Aborted extends Error {
  override readonly name = 'Aborted';
}

export function assertRunning(): void {
  if (abortCode !== null) throw new Aborted('the bench is stopping');
}
const disturbedBy = new Set<string>();

/** Registers an undo step; they run last-in first-out. */
export function onCleanup(what: string, fn: () => unknown): void {
  cleanups.push({ what, fn });
}

let cleaning: Promise<void> | null = null;
function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, fn } = cleanups.pop()!;
      try {
        await fn();
      } catch (err) {
        process.stderr.write(`bench: cleanup "${what}" failed: ${(err as Error).message}\n`);
      }
    }
  })();
  return cleaning;
}

function acquireLock(): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(LOCK_FILE, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      onCleanup('lock', () => unlinkSync(LOCK_FILE));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(LOCK_FILE, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new Refusal(`another bench (pid ${pid}) holds ${LOCK_FILE}`);
      rmSync(LOCK_FILE, { force: true }); // stale
    }
  }
  throw new Refusal(`cannot take ${LOCK_FILE}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The bench cannot run here (exit 3): nothing was changed. */
export class Refusal extends Error {
  override readonly name = 'Refusal';
}

/** A result that says the bench itself is broken (exit 1 after printing). */
export class BenchBroken extends Error {
  override readonly name = 'BenchBroken';
}

/**
 * Runs one bench: lock, cleanup on every exit path, hard time limit. Exit codes: 0 ran (figures
 * printed, whatever the targets say), 1 failed or broken, 3 refused to run, 124 over its time limit.
 */
export async function main(name: string, limitSeconds: number, needs: PreflightOptions, body: () => Promise<void>): Promise<never> {
  let code = 0;
  const bail = (why: string, exitCode: number) => {
    if (abortCode !== null) return;
    abortCode = exitCode;
    process.stderr.write(`bench ${name}: ${why}; cleaning up\n`);
    void runCleanups().finally(() => process.exit(exitCode));
  };
  process.once('SIGINT', () => bail('SIGINT', 130));
  process.once('SIGTERM', () => bail('SIGTERM', 143));
  let limit: NodeJS.Timeout | undefined;
  let loadBefore: string | null = null;
  let t0 = now();
  try {
    acquireLock();
    await preflight(needs);
    // The limit counts the bench, not the wait for the environment to be free.
    t0 = now();
    loadBefore = loadAverage();
    // DW_BENCH_LIMIT_SECONDS: for a run against many containers the bench did not start itself.
    const limitS = Number(process.env.DW_BENCH_LIMIT_SECONDS ?? limitSeconds);
    limit = setTimeout(() => bail(`over its time limit of ${limitS} s`, 124), limitS * 1000);
    limit.unref();
    // Anyone else using the test environment while we measure disturbs the figures: say so.
    const watch = setInterval(() => {
      for (const o of otherUsers()) disturbedBy.add(o.replace(/^\d+: /, '').slice(0, 100));
    }, 2000);
    watch.unref();
    try {
      await body();
    } finally {
      clearInterval(watch);
    }
  } catch (err) {
    if (abortCode !== null) {
      // Interrupted: bail() cleans up and exits; the body's own failure is only a consequence.
      await runCleanups();
      process.exit(abortCode);
    }
    if (err instanceof Refusal) {
      process.stderr.write(`bench ${name}: refusing to run: ${err.message}\n`);
      code = 3;
    } else {
      process.stderr.write(`bench ${name}: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      code = 1;
    }
  }
  await runCleanups();
  clearTimeout(limit);
  if (loadBefore !== null) say(`# ${name}: load average (1 min) ${loadBefore} before, ${loadAverage()} after, on ${availableParallelism()} CPUs`);
  if (disturbedBy.size > 0) say(`# ${name}: WARNING: other users of the test environment ran during this bench; figures may be disturbed: ${[...disturbedBy].join(' | ')}`);
  say(`# ${name}: ${code === 0 ? 'done' : `exit ${code}`} in ${((now() - t0) / 1000).toFixed(1)} s`);
  process.exit(code);
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;

// ------------------------------------------------------------------ preflight

/** Processes that would share the kernel table, the test dockerd or 198.51.100.0/24 with us. */
function otherUsers(): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmd: string;
    try {
      // Our own children (the daemon under test) are not "others".
      if (Number(/^\d+ \(.*\) \S+ (\d+)/s.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'))?.[1]) === process.pid) continue;
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    // `flock LOCK cmd…` (or `timeout N flock …`) waiting for the test lock uses nothing yet; once it holds it, its children are found.
    if (/^(timeout\s+\S+\s+)?flock\s/.test(cmd)) continue;
    if (/dist\/cli\/main\.js run\b/.test(cmd) || /test\/integration\/\S+\.test\.ts/.test(cmd)) found.push(`${entry}: ${cmd.slice(0, 140)}`);
  }
  return found;
}

export interface PreflightOptions {
  /** The bench installs `inet dockwarden` in the host namespace: it must not exist yet. */
  readonly hostTable: boolean;
  /** The bench talks to the test dockerd. */
  readonly docker: boolean;
  /** The bench spawns the daemon from dist/. */
  readonly daemon: boolean;
}

/**
 * Refuses (changing nothing) when: not root; 198.51.100.0/24 is routed or assigned on the host;
 * `inet dockwarden` already exists (another daemon or test owns it); a dockwarden daemon or an
 * integration test is running (they share the table, the test dockerd and the client range) — waits
 * up to DW_BENCH_WAIT_SECONDS (default 0) for those to end; dist/ or the test dockerd is missing.
 */
async function preflight(options: PreflightOptions): Promise<void> {
  if (process.getuid?.() !== 0) throw new Refusal('must run as root (nft, network namespaces)');
  const waitUntil = Date.now() + Number(process.env.DW_BENCH_WAIT_SECONDS ?? 0) * 1000;
  // A bench that needs none of the shared parts (relabel) only warns if others run (see main()).
  const sharesEnvironment = options.hostTable || options.docker || options.daemon;
  for (; sharesEnvironment; ) {
    // Other users first: while an integration test runs, the range and the table are its, not stale.
    reapStaleClients();
    const others = otherUsers();
    const problems = others.length > 0 ? [`other users of the test environment are running:\n  ${others.join('\n  ')}`] : [];
    try {
      assertClientNetFree();
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (options.hostTable && nftTableExists('inet', 'dockwarden')) {
      problems.push('table inet dockwarden already exists (a daemon or a test owns it; if it is stale: node dist/cli/main.js firewall remove)');
    }
    if (options.hostTable) {
      for (const tool of ['iptables', 'ip6tables']) {
        if (iptablesChainExists(tool, 'DOCKWARDEN')) {
          problems.push(`${tool} chain DOCKWARDEN exists (dockwarden's iptables backend, from a daemon or a test): it drops what the bench measures; if it is stale: DOCKWARDEN_FIREWALL_BACKEND=iptables node dist/cli/main.js firewall remove`);
        }
      }
    }
    if (problems.length === 0) break;
    if (others.length === 0 || Date.now() >= waitUntil) {
      throw new Refusal(`${problems.join('\n')}${others.length > 0 ? '\n(DW_BENCH_WAIT_SECONDS=N waits up to N s for them to end)' : ''}`);
    }
    await sleep(2000);
  }
  if (sharesEnvironment) reapStale();
  if (options.daemon && !existsSync(CLI)) throw new Refusal(`${CLI} missing: npm run build`);
  if (options.docker) {
    try {
      await new Docker({ socketPath: DOCKER_SOCKET, timeout: 5_000 }).ping();
    } catch (err) {
      throw new Refusal(`test dockerd not reachable at ${DOCKER_SOCKET} (${(err as Error).message}): bash scripts/test-env.sh up`);
    }
    try {
      await api.getImage(TEST_IMAGE).inspect();
    } catch {
      throw new Refusal(`image ${TEST_IMAGE} missing: bash scripts/test-env.sh up`);
    }
    await removeBenchContainers(); // leftovers of an interrupted run (the lock says no bench runs now)
  }
}

/**
 * Test clients (`dwt-<pid>-<n>`, test/helpers/netns.ts) whose process is gone — a test killed by a
 * timeout cannot run its exit hook — hold 198.51.100.0/24 until the next `createClient` reaps them.
 * Reaped here by the helper's own rule (dead pid only), so a killed test does not block the benches.
 */
function reapStaleClients(): void {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = /^dwt-(\d+)-([0-9a-z]+)\b/.exec(line);
    if (!m || pidAlive(Number(m[1]))) continue;
    execFileSync('ip', ['netns', 'del', `dwt-${m[1]}-${m[2]}`], { stdio: 'ignore' });
    try {
      execFileSync('ip', ['link', 'del', `dwh${Number(m[1]).toString(36)}x${m[2]}`], { stdio: 'ignore' });
    } catch {
      /* went with the namespace */
    }
  }
}

/** Namespaces and scratch tables left by benches that no longer run. */
function reapStale(): void {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = /^(dwb-(\d+)-\d+)\b/.exec(line);
    if (m && !pidAlive(Number(m[2]))) execFileSync('ip', ['netns', 'del', m[1]!], { stdio: 'ignore' });
  }
  const tables = execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
  for (const m of tables.matchAll(/^table inet (dwbench_(\d+))$/gm)) {
    if (!pidAlive(Number(m[2]))) execFileSync('nft', ['delete', 'table', 'inet', m[1]!], { stdio: 'ignore' });
  }
}

// ------------------------------------------------------------------ nft

/** From the whole `-S` dump: iptables-nft 1.8.9 answers `-L MISSING` with "incompatible", like a chain it cannot read. */
function iptablesChainExists(tool: string, chain: string): boolean {
  try {
    return execFileSync(tool, ['-w', '5', '-S'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').includes(`-N ${chain}`);
  } catch {
    return false; // no such tool, or no table: no chain of ours either
  }
}

export function nftTableExists(family: string, name: string, netns?: string): boolean {
  const args = ['list', 'table', family, name];
  try {
    execFileSync(netns ? 'ip' : 'nft', netns ? ['netns', 'exec', netns, 'nft', ...args] : args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** `nft -f -` with the script on stdin, in the host namespace or in `netns` (like `runNft`). */
export function nftScript(script: string, netns?: string): Promise<void> {
  const [file, args] = netns ? ['ip', ['netns', 'exec', netns, 'nft', '-f', '-']] : ['nft', ['-f', '-']];
  return new Promise((resolve, reject) => {
    const child = execFile(file, args as string[], { encoding: 'utf8', timeout: 60_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`nft failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(script);
  });
}

export function nftJson(args: readonly string[], netns?: string): unknown {
  const argv = ['-j', ...args];
  return JSON.parse(execFileSync(netns ? 'ip' : 'nft', netns ? ['netns', 'exec', netns, 'nft', ...argv] : argv, { encoding: 'utf8', maxBuffer: 256 << 20 }));
}

/**
 * Runs `nft -f -` from a small plain-node child process and reports how long it took there. Spawning
 * costs more from a big process (fork copies its page tables: here 1.3 ms at 60 MiB RSS, 2.2 ms at
 * 360 MiB), and a bench under the TypeScript loader, holding 10,000 synthetic plans, is much bigger
 * than the daemon: timing nft from here would charge the floor (or the scale figures) for our size.
 * The worker spawns nft the way the daemon's runTool does (execFile, script on stdin).
 */
export interface NftWorker {
  /** Milliseconds the transaction took, measured in the worker; rejects with nft's message. */
  run(script: string, netns?: string): Promise<number>;
  /** The same, with the CPU time nft (and `ip netns exec`) used, from the worker's children's ticks (10 ms each). */
  runCpu(script: string, netns?: string): Promise<{ ms: number; cpuMs: number }>;
}

/** CPU milliseconds of this process's waited-for children (`/proc/self/stat` cutime + cstime, 10 ms ticks). */
export function childrenCpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** CPU milliseconds of this process and its waited-for children. */
export function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000 + childrenCpuMs();
}

const NFT_WORKER = `
const { execFile } = require('node:child_process');
const { readFileSync } = require('node:fs');
const childrenCpu = () => { const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[13]) + Number(f[14])) * 10; };
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, argv, input } = JSON.parse(line);
  const t0 = performance.now();
  const c0 = childrenCpu();
  const child = execFile(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 60000, maxBuffer: 268435456 }, (err, _out, stderr) => {
    process.stdout.write(JSON.stringify({ id, ms: performance.now() - t0, cpuMs: childrenCpu() - c0, error: err ? (stderr.trim() || err.message) : null }) + '\\n');
  });
  child.stdin.on('error', () => {});
  child.stdin.end(input);
});
`;

let worker: NftWorker | null = null;
export function nftWorker(): NftWorker {
  if (worker) return worker;
  const child = spawn(process.execPath, ['-e', NFT_WORKER], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(`nft worker pid ${child.pid}`, () => child.kill('SIGKILL'));
  const pending = new Map<number, { resolve: (r: { ms: number; cpuMs: number }) => void; reject: (e: Error) => void }>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const { id, ms: took, cpuMs: cpu, error } = JSON.parse(line) as { id: number; ms: number; cpuMs: number; error: string | null };
    const p = pending.get(id);
    pending.delete(id);
    if (error === null) p?.resolve({ ms: took, cpuMs: cpu });
    else p?.reject(new Error(`nft failed: ${error}`));
  });
  let seq = 0;
  const runCpu = (script: string, netns?: string): Promise<{ ms: number; cpuMs: number }> => {
    const id = ++seq;
    const argv = netns ? ['ip', 'netns', 'exec', netns, 'nft', '-f', '-'] : ['nft', '-f', '-'];
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.stdin!.write(`${JSON.stringify({ id, argv, input: script })}\n`);
    });
  };
  worker = { runCpu, run: async (script, netns) => (await runCpu(script, netns)).ms };
  return worker;
}

/**
 * The floors' scratch table: the three kinds of set a container start touches in `inet dockwarden`
 * (a hash set of wildcard-bound ports, an interval set of source blocks, a hash set of endpoints),
 * and no chain, so it never sees a packet. In the host namespace (so a transaction costs exactly what
 * the daemon's costs: `nft -f -` spawned directly), or in `netns`.
 */
export async function createScratchTable(netns?: string): Promise<string> {
  assertRunning();
  const name = `dwbench_${process.pid}`;
  await nftScript(
    `table inet ${name} {
\tset wildcard4 { type inet_proto . inet_service; }
\tset allow4 { type ipv4_addr . inet_proto . inet_service . ipv4_addr; flags interval; }
\tset endpoints4 { type ipv4_addr . inet_proto . inet_service . inet_service; }
}
`,
    netns,
  );
  onCleanup(`nft table inet ${name}`, () => (netns ? undefined : execFileSync('nft', ['delete', 'table', 'inet', name], { stdio: 'ignore' })));
  return name;
}

/** The element script of one container start (one published port allowed to one source), as the daemon renders it. */
export function containerElements(port: number, containerAddr: string): string[] {
  return [
    `wildcard4 { tcp . ${port} }`,
    `allow4 { 0.0.0.0/0 . tcp . ${port} . 198.51.100.10/32 }`,
    `endpoints4 { ${containerAddr} . tcp . ${port} . ${port} }`,
  ];
}

/** One add-element transaction (timed by the caller), and the delete that undoes it. */
export function elementTransaction(table: string, port: number, containerAddr: string, verb: 'add' | 'delete'): string {
  return `${containerElements(port, containerAddr).map((e) => `${verb} element inet ${table} ${e}`).join('\n')}\n`;
}

// ------------------------------------------------------------------ network namespaces

let nsSeq = 0;

/** A bare network namespace (only `lo`), deleted at cleanup. */
export function scratchNetns(): string {
  assertRunning();
  const name = `dwb-${process.pid}-${++nsSeq}`;
  execFileSync('ip', ['netns', 'add', name]);
  onCleanup(`netns ${name}`, () => execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' }));
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** The test client (test/helpers/netns.ts: 198.51.100.0/24 only, refuses when taken), destroyed at cleanup. */
export function client(addrs: readonly string[]): NetnsClient {
  assertRunning();
  const c = createClient({ addrs });
  onCleanup(`test client ${c.name}`, () => c.destroy());
  return c;
}

/** A long-lived node process inside the client's namespace, running `script` (CommonJS), killed at cleanup. */
export function spawnInClient(c: NetnsClient, script: string, args: readonly string[]): ChildProcess {
  assertRunning();
  const child = spawn('ip', ['netns', 'exec', c.name, process.execPath, '-e', script, ...args], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(`prober pid ${child.pid}`, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return child;
}

// ------------------------------------------------------------------ docker

/** API calls (with a timeout) and the event stream (without one): two clients, as the daemon has. */
export const api = new Docker({ socketPath: DOCKER_SOCKET, timeout: 60_000 });
const eventsClient = new Docker({ socketPath: DOCKER_SOCKET });

export interface ContainerSpec {
  readonly hostPort: number;
  readonly containerPort?: number;
  readonly cmd?: readonly string[];
  /** Another engine than the test dockerd (the chaos soak's own). */
  readonly engine?: Docker;
  /** Merged into the create request; its HostConfig over the port binding. */
  readonly create?: Partial<Docker.ContainerCreateOptions>;
}

/**
 * Many running containers as a dense host has them (issue #18): the first `published` publish a port
 * each (from `basePort` on: docker-proxy processes and our firewall's elements), the next `bridged` are
 * on the default bridge without ports (a veth each: bridge isolation's work), the rest run with
 * `--network none`, the first `bound` of those with a host directory bind-mounted read-only (`BOUND_DIR`:
 * their syncs map it through the host's mount table). The test engine's default bridge is a /24: at
 * most ~250 of them can be on it.
 */
export function mixedSpecs(n: number, published: number, bridged: number, basePort: number, bound = 0): ContainerSpec[] {
  if (bound > 0) mkdirSync(BOUND_DIR, { recursive: true });
  return Array.from({ length: n }, (_, i): ContainerSpec => {
    if (i < published) return { hostPort: basePort + i };
    const none = i >= published + bridged;
    const binds = none && i < published + bridged + bound ? { Binds: [`${BOUND_DIR}:/data:ro`] } : {};
    return { hostPort: 0, create: { ExposedPorts: {}, HostConfig: { PortBindings: {}, ...(none ? { NetworkMode: 'none' } : {}), ...binds } } };
  });
}

/** The host directory `mixedSpecs`' bound containers mount. */
const BOUND_DIR = '/srv/dw-bench-bound';

/** What `mixedSpecs` made, for the bench's output. */
export function describeMix(n: number, published: number, bridged: number, bound = 0): string {
  const none = n - published - bridged;
  return `${published} publishing a port, ${bridged} on the default bridge without ports, ${none} --network none${bound > 0 ? ` (${Math.min(bound, none)} of them with a bind mount)` : ''}`;
}

/** Creates and starts a bench container publishing `hostPort` (tcp); resolves with its id. */
export async function startContainer(spec: ContainerSpec): Promise<string> {
  assertRunning();
  const containerPort = spec.containerPort ?? 80;
  const key = `${containerPort}/tcp`;
  const container = await (spec.engine ?? api).createContainer({
    Image: TEST_IMAGE,
    Cmd: [...(spec.cmd ?? ['httpd', '-f', '-p', String(containerPort), '-h', '/var/www'])],
    Labels: { [BENCH_LABEL]: String(process.pid) },
    ExposedPorts: { [key]: {} },
    ...spec.create,
    HostConfig: { PortBindings: { [key]: [{ HostIp: '', HostPort: String(spec.hostPort) }] }, ...spec.create?.HostConfig },
  });
  try {
    assertRunning(); // created while the cleanup was already listing: take it out here
    await container.start();
  } catch (err) {
    await container.remove({ force: true }).catch(() => {});
    throw err;
  }
  return container.id;
}

/** Starts containers `batch` at a time; resolves with their ids in `specs` order. */
export async function startContainers(specs: readonly ContainerSpec[], batch: number, onBatch?: (specs: readonly ContainerSpec[]) => void): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < specs.length; i += batch) {
    const slice = specs.slice(i, i + batch);
    onBatch?.(slice);
    ids.push(...(await Promise.all(slice.map(startContainer))));
  }
  return ids;
}

/** Force-removes every container labelled `dw-bench` (ours, or left by an interrupted bench). */
export async function removeBenchContainers(concurrency = 8): Promise<number> {
  const list = await api.listContainers({ all: true, filters: { label: [BENCH_LABEL] } });
  const queue = list.map((c) => c.Id);
  const worker = async (): Promise<void> => {
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
      try {
        await api.getContainer(id).remove({ force: true, v: true });
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409) throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return list.length;
}

let containersRegistered = false;
/** Registers removal of the bench's containers (once). */
export function cleanupContainersOnExit(): void {
  if (containersRegistered) return;
  containersRegistered = true;
  onCleanup('bench containers', async () => {
    // A create that was in flight when the cleanup listed may land afterwards: list again until none.
    for (let round = 0; round < 5 && (await removeBenchContainers()) > 0; round++) await sleep(500);
  });
}

export interface DockerEventSeen {
  readonly action: string;
  readonly id: string;
  /** Docker's own time of the event, in ms (from `timeNano`, exactly). */
  readonly eventMs: number;
  /** When this process received it. */
  readonly rxMs: number;
}

/** Subscribes to container events (newline-split, as the daemon does); resolves once subscribed. */
export async function subscribeEvents(onEvent: (event: DockerEventSeen) => void): Promise<() => void> {
  const stream = (await eventsClient.getEvents({ filters: { type: ['container'] } })) as NodeJS.ReadableStream & { destroy(): void };
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    const rxMs = now();
    buffered += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (text.trim() === '') continue;
      const nano = /"timeNano":(\d+)/.exec(text)?.[1];
      const event = JSON.parse(text) as { Action?: string; id?: string; Actor?: { ID?: string } };
      if (!nano) continue;
      const big = BigInt(nano);
      onEvent({
        action: event.Action ?? '',
        id: event.id ?? event.Actor?.ID ?? '',
        eventMs: Number(big / 1000n) / 1000,
        rxMs,
      });
    }
  });
  stream.on('error', () => {});
  const close = (): void => stream.destroy();
  onCleanup('docker event stream', close);
  return close;
}

// ------------------------------------------------------------------ the daemon under test

export interface LogEntry {
  readonly rx: number;
  readonly line: Record<string, unknown> & { msg?: string; time?: number; level?: number };
}

export interface BenchDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly dir: string;
  readonly policyFile: string;
  readonly stateDir: string;
  readonly logs: LogEntry[];
  readonly stderr: string[];
  /** The first entry (past or future) that matches; rejects after `timeoutMs` or when the daemon exits. */
  waitFor(match: (line: LogEntry['line']) => boolean, timeoutMs?: number): Promise<LogEntry>;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface DaemonOptions {
  readonly policy: string;
  /** Kept across daemons (e.g. for `firewall baseline` afterwards); default: a fresh one in the daemon's dir. */
  readonly stateDir?: string;
  readonly reconcileSeconds?: number;
  readonly driftCheckSeconds?: number;
  readonly logLevel?: string;
  /** Another engine than the test dockerd (the gate bench's own). */
  readonly dockerSocket?: string;
  /** YAML appended to the config (e.g. a `gate:` section). */
  readonly extraConfig?: string;
  /** Node's own flags before the script (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  readonly nodeArgs?: readonly string[];
  /** Another build's dist/cli/main.js than DAEMON_CLI (a before figure in the same run). */
  readonly cli?: string;
}

export function writeConfig(
  dir: string, policyFile: string, stateDir: string,
  extra: { reconcileSeconds?: number; driftCheckSeconds?: number; logLevel?: string; dockerSocket?: string; extraConfig?: string } = {},
): string {
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    [
      `docker:\n  socket: ${extra.dockerSocket ?? DOCKER_SOCKET}`,
      `policy:\n  file: ${policyFile}`,
      `firewall:\n  backend: nftables\n  driftCheckSeconds: ${extra.driftCheckSeconds ?? 30}`,
      `state:\n  dir: ${stateDir}`,
      `log:\n  level: ${extra.logLevel ?? 'info'}`,
      `reconcile:\n  intervalSeconds: ${extra.reconcileSeconds ?? 300}`,
      `metrics:\n  listen: unix:${join(dir, 'metrics.sock')}`,
      extra.extraConfig ?? '',
      '',
    ].join('\n'),
  );
  return file;
}

/** The benches' policy: ports denied by default, `count` ports from `basePort` open to `allowed` alone. */
export function portsPolicy(basePort: number, count: number, allowed = '198.51.100.10'): string {
  return `version: 1
ports:
  default: deny
  rules:
    - { name: bench, match: { port: ${basePort}-${basePort + count - 1}/tcp }, allow: [${allowed}] }
`;
}

/** A scratch directory, removed at cleanup. */
export function scratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dw-bench-'));
  onCleanup(`dir ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Node settings of the shell the bench runs in, which the unit does not give the daemon: the extra CA
 * bundle a machine's TLS set-up names (node reads and parses it at start: +1.8 MiB of RSS for a 215 KB
 * bundle, bare node and daemon alike, which the idle-memory figures must not count).
 */
const SHELL_ONLY = new Set(['NODE_OPTIONS', 'NOTIFY_SOCKET', 'NODE_EXTRA_CA_CERTS']);

/** The environment the daemon and the CLI get: production-like, without test/loader settings. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const key of Object.keys(env)) {
    if ((key.startsWith('DOCKWARDEN_') && !(key in extra)) || key.startsWith('TS_NODE') || (SHELL_ONLY.has(key) && !(key in extra))) delete env[key];
  }
  return env;
}

/**
 * The environment the unit runs the daemon with (`Environment=` in systemd/dockwarden.service: NODE_OPTIONS,
 * glibc's malloc settings); DW_BENCH_NODE_OPTIONS replaces its NODE_OPTIONS (empty: none), to measure without.
 */
export function daemonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: unit = '', ...settings } = unitEnvironment();
  const options = process.env.DW_BENCH_NODE_OPTIONS ?? unit;
  return { ...cleanEnv(), ...settings, ...(options === '' ? {} : { NODE_OPTIONS: options }), ...extra };
}

/** The daemon under test: this checkout's dist/, or DW_BENCH_CLI (another build's dist/cli/main.js, for a "before" figure). */
export const DAEMON_CLI = process.env.DW_BENCH_CLI ?? CLI;

/** `dockwarden run` from dist/, as production runs it (plain node with the unit's NODE_OPTIONS, JSON logs on stdout). */
export function spawnDaemon(options: DaemonOptions): BenchDaemon {
  assertRunning();
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, options.policy);
  const stateDir = options.stateDir ?? join(dir, 'state');
  const config = writeConfig(dir, policyFile, stateDir, options);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? DAEMON_CLI, 'run', '--config', config], { env: daemonEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: LogEntry[] = [];
  const stderr: string[] = [];
  const waiters = new Set<{ match: (l: LogEntry['line']) => boolean; resolve: (e: LogEntry) => void; reject: (e: Error) => void }>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    const rx = now();
    let line: LogEntry['line'];
    try {
      line = JSON.parse(text) as LogEntry['line'];
    } catch {
      line = { msg: `(not JSON) ${text}` };
    }
    const entry = { rx, line };
    logs.push(entry);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });
  createInterface({ input: child.stderr! }).on('line', (text) => stderr.push(text));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))));
  void exited.then((code) => {
    for (const w of waiters) w.reject(new Error(`daemon exited (${code}); last lines:\n${tail(logs, stderr)}`));
    waiters.clear();
  });
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    }
    return exited;
  };
  onCleanup(`daemon pid ${child.pid}`, stop);
  return {
    child,
    pid: child.pid!,
    dir,
    policyFile,
    stateDir,
    logs,
    stderr,
    stop,
    waitFor(match, timeoutMs = 60_000) {
      const seen = logs.find((e) => match(e.line));
      if (seen) return Promise.resolve(seen);
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`daemon exited; last lines:\n${tail(logs, stderr)}`));
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (e: LogEntry) => (clearTimeout(timer), resolve(e)),
          reject: (e: Error) => (clearTimeout(timer), reject(e)),
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no matching daemon log line in ${timeoutMs} ms; last lines:\n${tail(logs, stderr)}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
  };
}

function tail(logs: readonly LogEntry[], stderr: readonly string[]): string {
  return [...logs.slice(-12).map((e) => JSON.stringify(e.line)), ...stderr.slice(-5).map((s) => `stderr: ${s}`)].join('\n');
}

/** `dockwarden firewall <action>` (nftables) from dist/, with an optional config file. */
export function cli(args: readonly string[], config?: string): string {
  if (args[1] !== 'remove') assertRunning();
  return execFileSync(process.execPath, [CLI, ...(config ? ['--config', config] : []), ...args], {
    env: cleanEnv({ DOCKWARDEN_FIREWALL_BACKEND: 'nftables' }),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

let tableRegistered = false;
/** Registers `dockwarden firewall remove` (once): the bench owns `inet dockwarden` from now on. */
export function removeTableOnExit(): void {
  if (tableRegistered) return;
  tableRegistered = true;
  onCleanup('table inet dockwarden', () => removeTable());
}

export function removeTable(): void {
  cli(['firewall', 'remove']);
}

export function daemonJudged(id: string) {
  return (line: LogEntry['line']): boolean => {
    const c = line.container as { id?: string; running?: boolean } | undefined;
    return line.msg === 'container judged' && c?.id === id && c.running === true;
  };
}

/** VmRSS / VmHWM of a process, in MiB. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssMiB: Math.round((kb('VmRSS') / 1024) * 10) / 10, hwmMiB: Math.round((kb('VmHWM') / 1024) * 10) / 10 };
}

/** Containers judged at once by the daemon (src/app/daemon.ts CONCURRENCY): the floors use as many. */
export const DAEMON_CONCURRENCY = 8;

/**
 * A reconcile's floor in ms, with no daemon running: list the containers, inspect every one
 * (DAEMON_CONCURRENCY at once) and read our table once (the drift check's read). `procfs`: the second
 * floor, which adds what the checks require of each running container beyond its inspect (its
 * processes' status and its mount table, by the daemon's own readers).
 */
export async function reconcileFloorMs(procfs: boolean): Promise<number> {
  const [, t] = await timed(async () => {
    const list = await api.listContainers({ all: true });
    const queue = list.map((c) => c.Id);
    await Promise.all(Array.from({ length: DAEMON_CONCURRENCY }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
        const inspect = await api.getContainer(id).inspect();
        const { State } = inspect;
        if (procfs && State.Running && State.Pid > 0) await Promise.all([readContainerProcesses(State.Pid, id), readContainerMountTable(State.Pid, id, mountPointsJudged(inspect))]);
      }
    }));
    nftJson(['list', 'table', 'inet', 'dockwarden']);
  });
  return t;
}
