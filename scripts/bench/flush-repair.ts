/**
 * flush-repair (issue #15, README "Chaos soak"): how long our tables are gone after `nft flush ruleset`,
 * now that the daemon hears of it from the kernel (src/app/table-watch.ts) instead of finding it at the
 * next drift check (`firewall.driftCheckSeconds`, default 30 s: the old window, uniform over 0–30 s).
 *
 * Isolation: the daemon (dist/, drift check every 300 s, so only the notification can repair within a
 * round) runs in a scratch network namespace (nsenter --net: `ip netns exec` would hide the cgroup
 * tree), judging bench containers of the shared test dockerd (their published ports become firewall
 * elements there; their veths are the host's, so the bridge table has no port elements). The flushes
 * run in that namespace only. A timer process in the namespace (plain node, the daemon's own addon,
 * native/nft_events.c) issues each flush and times, on the kernel's notifications, our table's
 * deletion (DELTABLE) → the first NEWTABLE of it after that: the daemon's replace committed, the table
 * back whole with its elements (one transaction). Each round then checks the elements are there.
 *
 * Floor, same run, after the daemon is stopped: the timer itself restores a saved copy of both tables
 * (`nft -f`) the moment it sees the deletion — detection, one nft run, the commit. The daemon adds its
 * debounce (5 ms), one drift read in the queue (`nft -j list`; the table was deleted, so no read beside
 * the queue first), beside it a read of docker-proxy's listeners (here a read of every process: no
 * dockerd runs in this namespace), and the rendering of the table.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CLI, ROOT, cleanEnv, cleanupContainersOnExit, fmtStats, main, nftJson, onCleanup, printJson, ratio, say, scratchDir, scratchNetns, sleep, startContainers, stats, writeConfig, BenchBroken,
} from './lib.js';

const ROUNDS = Number(process.env.DW_BENCH_FLUSHES ?? 20);
const WARMUP = 2;
const CONTAINERS = 5;
const BASE_PORT = 22100;
const ALLOWED = '198.51.100.10';
const OLD_DRIFT_SECONDS = 30;
const ADDON = join(ROOT, 'native/build/Release/dw_nftevents.node');

if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 200) throw new Error('DW_BENCH_FLUSHES must be 1..200');

const POLICY = `version: 1
ports:
  default: deny
  rules:
    - { name: bench, match: { port: ${BASE_PORT}-${BASE_PORT + CONTAINERS - 1}/tcp }, allow: [${ALLOWED}] }
`;

// The timer, in the namespace. stdin: `flush` (times the daemon's repair) or `restore FILE` (the floor:
// restores FILE itself on the deletion). stdout: one JSON line per command, ms per table.
const TIMER = `
const addon = require(process.argv[1]);
const { execFile } = require('node:child_process');
const TABLES = { firewall: [1, 'dockwarden'], bridge: [7, 'dockwarden_bridge'] };
let round = null;
// Kept referenced (closed at the end of stdin): a handle collected unclosed stops listening.
const watch = addon.watch((events, problem) => {
  const t = performance.now();
  if (!round) return;
  if (problem) round.problems.push(problem);
  for (const [family, type, table] of events) {
    for (const [key, [f, name]] of Object.entries(TABLES)) {
      if (family !== f || table !== name) continue;
      if (type === 2 && round.gone[key] === undefined) {
        round.gone[key] = t;
        if (round.restore && key === 'firewall') execFile('nft', ['-f', round.restore], () => {});
      } else if (type === 0 && round.gone[key] !== undefined && round.back[key] === undefined) round.back[key] = t;
    }
  }
  if (Object.keys(TABLES).every((k) => round.back[k] !== undefined)) {
    const r = round;
    round = null;
    clearTimeout(r.timer);
    const ms = Object.fromEntries(Object.keys(TABLES).map((k) => [k, r.back[k] - r.gone[k]]));
    process.stdout.write(JSON.stringify({ ms, problems: r.problems }) + '\\n');
  }
});
const commands = require('node:readline').createInterface({ input: process.stdin });
commands.on('close', () => watch.close());
commands.on('line', (line) => {
  const [command, file] = line.split(' ');
  round = { gone: {}, back: {}, problems: [], restore: command === 'restore' ? file : null };
  round.timer = setTimeout(() => { round = null; process.stdout.write(JSON.stringify({ timeout: true }) + '\\n'); }, 10000);
  // Not execFileSync: the loop must be free to time the notifications while nft runs.
  execFile('nft', ['flush', 'ruleset'], () => {});
});
`;

interface Round {
  readonly ms?: { readonly firewall: number; readonly bridge: number };
  readonly problems?: readonly string[];
  readonly timeout?: boolean;
}

function timer(netns: string): (command: string) => Promise<Round> {
  const child: ChildProcess = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '-e', TIMER, ADDON], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(`timer pid ${child.pid}`, () => child.kill('SIGKILL'));
  const answers: Array<(round: Round) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => answers.shift()?.(JSON.parse(line) as Round));
  return (command) => new Promise((resolve) => (answers.push(resolve), child.stdin!.write(`${command}\n`)));
}

/** The daemon under test in the namespace; resolves once its start-up reconcile is done. */
async function daemon(netns: string): Promise<ChildProcess> {
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const config = writeConfig(dir, policyFile, join(dir, 'state'), { driftCheckSeconds: 300, reconcileSeconds: 3600 });
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, CLI, 'run', '--config', config], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  onCleanup(`daemon pid ${child.pid}`, () => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    const timeout = setTimeout(() => reject(new BenchBroken('the daemon did not reconcile within 60 s')), 60_000);
    lines.on('line', (line) => {
      if (line.includes('"msg":"watching nftables changes to our tables"')) (clearTimeout(timeout), resolve());
    });
  });
  return child;
}

/** Our firewall table in the namespace holds the allowed source of every container's port. */
function elementsBack(netns: string): boolean {
  const text = JSON.stringify(nftJson(['list', 'table', 'inet', 'dockwarden'], netns));
  return (text.match(new RegExp(ALLOWED.replace(/\./g, '\\.'), 'g')) ?? []).length >= CONTAINERS;
}

async function measure(run: (command: string) => Promise<Round>, command: string, netns: string, check: boolean): Promise<{ firewall: number[]; bridge: number[]; problems: string[] }> {
  const firewall: number[] = [];
  const bridge: number[] = [];
  const problems: string[] = [];
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const round = await run(command);
    if (round.timeout || !round.ms) throw new BenchBroken(`${command}: a table was not back within 10 s (round ${i + 1})`);
    if (check && !elementsBack(netns)) throw new BenchBroken(`round ${i + 1}: the table came back without its elements`);
    problems.push(...(round.problems ?? []));
    if (i >= WARMUP) (firewall.push(round.ms.firewall), bridge.push(round.ms.bridge));
    await sleep(300); // the daemon checks once more after its own replace: let it finish
  }
  return { firewall, bridge, problems };
}

await main('flush-repair', 170, { hostTable: false, docker: true, daemon: true }, async () => {
  cleanupContainersOnExit();
  const netns = scratchNetns();
  await startContainers(Array.from({ length: CONTAINERS }, (_, i) => ({ hostPort: BASE_PORT + i })), CONTAINERS);
  const d = await daemon(netns);
  const run = timer(netns);
  await sleep(500);
  if (!elementsBack(netns)) throw new BenchBroken('the daemon installed no elements for the bench containers');
  say(`# flush-repair: daemon in netns ${netns}, ${CONTAINERS} containers; ${WARMUP} warm-up + ${ROUNDS} measured flushes`);
  const repaired = await measure(run, 'flush', netns, true);

  const saved = join(scratchDir(), 'tables.nft');
  writeFileSync(saved, execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'ruleset'], { encoding: 'utf8' }));
  d.kill('SIGTERM');
  await new Promise((resolve) => d.once('exit', resolve));
  const floor = await measure(run, `restore ${saved}`, netns, true);

  const F = stats(repaired.firewall);
  const B = stats(repaired.bridge);
  const FF = stats(floor.firewall);
  const oldP50 = (OLD_DRIFT_SECONDS * 1000) / 2;
  const oldP99 = OLD_DRIFT_SECONDS * 1000 * 0.99;
  say(`flush-repair: nft flush ruleset → our table back (kernel notification times)`);
  say(`  inet dockwarden, daemon                   ${fmtStats(F)}`);
  say(`  bridge dockwarden_bridge, daemon          ${fmtStats(B)}`);
  say(`  floor: restore of a saved copy on the deletion (both tables, one nft -f)  ${fmtStats(FF)}`);
  say(`  before (drift check every ${OLD_DRIFT_SECONDS} s, the default): uniform over 0–${OLD_DRIFT_SECONDS} s, p50 ${oldP50} ms, p99 ${oldP99} ms`);
  say(`  ratio p99/floor_p99 = ${ratio(F.p99, FF.p99)};  notifications lost or refused: ${repaired.problems.length + floor.problems.length}`);
  printJson('flush-repair', {
    flushes: ROUNDS,
    firewall_ms: F,
    bridge_ms: B,
    floor_ms: FF,
    ratio_p99: ratio(F.p99, FF.p99),
    before_drift_interval_ms: { interval: OLD_DRIFT_SECONDS * 1000, p50: oldP50, p99: oldP99 },
    problems: [...repaired.problems, ...floor.problems],
  });
});
