/**
 * chaos (issue #15): a soak of container starts and stops with published ports while everything around
 * the daemon fails — dockerd restarts, SIGKILLs of the daemon (restarted at once, as systemd's
 * Restart=on-failure would, without its RestartSec), `nft flush ruleset`, the webhook receiver down for
 * a while, a policy reload every 20 s — with a denied and an allowed prober on every hot port throughout.
 *
 * Isolation: nothing of it runs in the host's network namespace or on the shared test dockerd. dockerd,
 * the daemon and the receiver enter the namespace with `nsenter --net` (network only: `ip netns exec`
 * would mount a sysfs of the namespace over /sys and hide the cgroup tree both dockerd and the daemon read).
 *   netns "soak" (dwb-<pid>-1): a dockerd of its own (own data-root, exec-root, pidfile, socket,
 *     containerd namespace, cgroup parent; its docker0 and iptables rules are the namespace's; in a
 *     cgroup v2 of its own, as systemd's docker.service, which the daemon's rule for ports not judged needs), the
 *     daemon under test (dist/, its own config, state dir, metrics socket, notify socket), the webhook
 *     receiver (chaos-receiver.ts, on 127.0.0.1 of that namespace). `nft flush ruleset` runs in it.
 *   netns "probe" (dwb-<pid>-2): the probers, 198.51.100.10 (allowed by the policy) and .20 (denied),
 *     joined to "soak" (198.51.100.1) by a veth pair that exists only inside the two namespaces.
 * The image dw-test/busybox:1 is copied from the shared test engine (read only) by save/load.
 *
 * Phases: control (no daemon: the probers and counters must see exposure, else exit 1), then the soak.
 * Figures: denied connections completed (0), containers unjudged or stale rules at the end (0),
 * forbidden-capability containers running at the end (0), alert ids raised (daemon log) vs received
 * (none lost), allowed prober success rate, recovery after each SIGKILL: SIGKILL → `READY=1` of the
 * new process on its notify socket, which the daemon sends only once its start-up reconcile judged
 * every container and replaced the ruleset (README "How it works").
 *
 * DW_CHAOS_QUICK=1 or --quick: 60 starts, 2 dockerd restarts, 2 SIGKILLs, 1 flush, receiver down 15 s.
 */
import { fork, spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { bindNotifySocket } from '../../test/helpers/notify-socket.js';
import { loadTestImage, netnsDockerd, type NetnsDockerd } from '../../test/helpers/netns-dockerd.js';
import { tableTimeline } from '../../test/helpers/table-timeline.js';
import { docker as testDocker, TEST_IMAGE } from '../../test/helpers/docker.js';
import {
  Aborted, BenchBroken, CLI, fmtStats, startContainer, ROOT, cleanEnv, main, now, onCleanup, printJson, say, scratchDir, scratchNetns, sleep, stats, writeConfig, Refusal,
} from './lib.js';
import { existsSync } from 'node:fs';

const QUICK = process.argv.includes('--quick') || process.env.DW_CHAOS_QUICK === '1';
const STARTS = Number(process.env.DW_CHAOS_STARTS ?? (QUICK ? 60 : 500));
const DOCKERD_RESTARTS = QUICK ? 2 : 10;
const DAEMON_KILLS = QUICK ? 2 : 10;
const FLUSHES = QUICK ? 1 : 5;
const RECEIVER_DOWN_MS = (QUICK ? 15 : 60) * 1000;
const RELOAD_EVERY_MS = 20_000;
const DRIFT_SECONDS = Number(process.env.DW_CHAOS_DRIFT_SECONDS ?? 2);
const WORKERS = 6;
const CAP_EVERY = 8; // every 8th container starts with SYS_ADMIN (forbidden, action kill)
const CONTROL_CONTAINERS = 8;
const BASE_PORT = 21000;
const PORTS = 200;
const SOAK_ADDR = '198.51.100.1';
const ALLOWED = '198.51.100.10';
const DENIED = '198.51.100.20';
const LOADER = '@isaacs/ts-node-temp-fork-for-pr-2009/import';
const LIMIT_SECONDS = QUICK ? 600 : 1800;
/** The daemon under test; DW_CHAOS_CLI runs another build (a copy of dist/, so a rebuild during a soak changes nothing). */
const DAEMON_CLI = process.env.DW_CHAOS_CLI ?? CLI;

const KEY = randomBytes(32);
const policyText = (variant: string): string => `version: 1
mode: enforce
ports:
  default: deny
  rules:
    - { name: soak-${variant}, match: { port: ${BASE_PORT}-${BASE_PORT + PORTS - 1}/tcp }, allow: [${ALLOWED}] }
containers:
  capabilities: { forbidden: [SYS_ADMIN], action: kill }
`;

// ------------------------------------------------------------------ the prober (node, CommonJS, in netns "probe")
// stdin: `watch P` (denied loops start), `open P` (allowed loop starts), `close P`, `unwatch P`, `stats`.
// Denied: 3 loops per watched port, one connection at a time, 300 ms connect timeout; a completed
// handshake is a breach (port, time). Allowed: one loop per open port, an HTTP GET every 200 ms that
// must answer 200 within 2 s.
const PROBER = `
const net = require('node:net');
const [host, allowed, denied] = process.argv.slice(1);
const watched = new Set(), open = new Set();
const r = { deniedAttempts: 0, breaches: [], allowedAttempts: 0, allowedOk: 0, allowedFailures: [] };
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
function connect(port, source, timeout) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: source });
    let done = false;
    const end = (v) => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => end('dropped'), timeout);
    s.once('connect', () => end('connected'));
    s.once('error', (e) => end(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)));
  });
}
async function deniedLoop(port) {
  while (watched.has(port)) {
    r.deniedAttempts++;
    const v = await connect(port, denied, 300);
    if (v === 'connected') { r.breaches.push({ port, t: Date.now() }); await sleep(50); }
    else if (v !== 'dropped') await sleep(20);
  }
}
function get(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: allowed });
    let buf = '', done = false;
    const end = (v) => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => end('timeout'), 2000);
    s.once('connect', () => s.write('GET / HTTP/1.0\\r\\n\\r\\n'));
    s.on('data', (d) => { buf += d; if (/^HTTP\\/1\\.[01] 200/.test(buf)) end('ok'); else if (buf.includes('\\r\\n')) end('status'); });
    s.once('error', (e) => end(String(e.code)));
    s.once('end', () => end(/^HTTP\\/1\\.[01] 200/.test(buf) ? 'ok' : 'closed'));
  });
}
async function allowedLoop(port) {
  while (open.has(port)) {
    const v = await get(port);
    if (!open.has(port)) break; // closed while asking: the answer no longer counts
    r.allowedAttempts++;
    if (v === 'ok') r.allowedOk++; else r.allowedFailures.push({ port, t: Date.now(), v });
    await sleep(200);
  }
}
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const [verb, p] = line.split(' '); const port = Number(p);
  if (verb === 'watch' && !watched.has(port)) { watched.add(port); for (let i = 0; i < 3; i++) setTimeout(() => deniedLoop(port), i * 100); }
  else if (verb === 'unwatch') watched.delete(port);
  else if (verb === 'open' && !open.has(port)) { open.add(port); allowedLoop(port); }
  else if (verb === 'close') open.delete(port);
  else if (verb === 'stats') process.stdout.write(JSON.stringify(r) + '\\n');
});
process.stdin.on('end', () => process.exit(0));
setTimeout(() => process.exit(5), ${LIMIT_SECONDS * 1000}).unref();
`;

interface ProberResult {
  deniedAttempts: number;
  breaches: Array<{ port: number; t: number }>;
  allowedAttempts: number;
  allowedOk: number;
  allowedFailures: Array<{ port: number; t: number; v: string }>;
}

function startProber(netns: string): { send(line: string): void; stats(): Promise<ProberResult> } {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', PROBER, SOAK_ADDR, ALLOWED, DENIED], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'inherit'] });
  onCleanup(`prober pid ${child.pid}`, () => child.exitCode === null && child.kill('SIGKILL'));
  const waiting: Array<(r: ProberResult) => void> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => waiting.shift()?.(JSON.parse(line) as ProberResult));
  return {
    send: (line) => void child.stdin!.write(`${line}\n`),
    stats: () => new Promise((resolve) => (waiting.push(resolve), child.stdin!.write('stats\n'))),
  };
}

// ------------------------------------------------------------------ namespaces

function nsExec(netns: string, args: readonly string[], input?: string): string {
  return execFileSync('ip', ['netns', 'exec', netns, ...args], { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
}

function namespaces(): { soak: string; probe: string } {
  const soak = scratchNetns();
  const probe = scratchNetns();
  // The pair is created inside "soak" and its peer moved straight into "probe": the host never sees it.
  execFileSync('ip', ['-n', soak, 'link', 'add', 'chs0', 'type', 'veth', 'peer', 'name', 'chp0', 'netns', probe]);
  execFileSync('ip', ['-n', soak, 'addr', 'add', `${SOAK_ADDR}/24`, 'dev', 'chs0']);
  execFileSync('ip', ['-n', soak, 'link', 'set', 'chs0', 'up']);
  for (const a of [ALLOWED, DENIED]) execFileSync('ip', ['-n', probe, 'addr', 'add', `${a}/24`, 'dev', 'chp0']);
  execFileSync('ip', ['-n', probe, 'link', 'set', 'chp0', 'up']);
  return { soak, probe };
}

// ------------------------------------------------------------------ the bench's own dockerd (test/helpers/netns-dockerd.ts)

function soakDockerd(netns: string): NetnsDockerd {
  const dockerd = netnsDockerd(netns, `dw-chaos-${process.pid}`, '10.214.0.1/24', { ownCgroup: true });
  onCleanup('soak dockerd, its containers and directories', () => dockerd.destroy());
  return dockerd;
}

// ------------------------------------------------------------------ the daemon under test, restartable

type Line = Record<string, unknown> & { msg?: string };

function daemonSupervisor(netns: string, dockerSocket: string, receiverUrl: string) {
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  const stateDir = join(dir, 'state');
  writeFileSync(policyFile, policyText('a'));
  writeFileSync(join(dir, 'webhook.secret'), `whsec_${KEY.toString('base64')}`, { mode: 0o600 });
  const config = writeConfig(dir, policyFile, stateDir, {
    dockerSocket,
    driftCheckSeconds: DRIFT_SECONDS,
    extraConfig: `alerts:\n  webhooks:\n    - { url: '${receiverUrl}', secretFile: ${join(dir, 'webhook.secret')}, format: standard, minSeverity: info }`,
  });
  const notify = bindNotifySocket();
  onCleanup('notify socket', () => notify.close());
  const lines: Array<{ t: number; pid: number; line: Line }> = [];
  const listeners = new Set<(l: Line) => void>();
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  // As systemd does, a reload waits for the start job: a SIGHUP before the daemon set its handler
  // would end it (and SIGHUP counts as a clean exit for Restart=on-failure).
  let starting: Promise<unknown> = Promise.resolve();
  const spawnOne = (): { pid: number; t: number } => {
    const t = now();
    const c = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, DAEMON_CLI, 'run', '--config', config], {
      env: { ...cleanEnv(), NOTIFY_SOCKET: notify.path },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    exited = new Promise((r) => c.once('exit', () => r()));
    const pid = c.pid!;
    createInterface({ input: c.stdout! }).on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        line = { msg: `(not JSON) ${text}` };
      }
      lines.push({ t: now(), pid, line });
      for (const l of listeners) l(line);
    });
    createInterface({ input: c.stderr! }).on('line', (text) => process.stderr.write(`daemon ${pid}: ${text}\n`));
    return { pid, t };
  };
  const ready = (pid: number, timeoutMs = 60_000): Promise<number> =>
    notify.next((f) => f.includes('READY=1') && f.includes(`MAINPID=${pid}`), timeoutMs).then(
      () => now(),
      (error: Error) => {
        const own = lines.filter((l) => l.pid === pid).slice(-25).map((l) => JSON.stringify(l.line).slice(0, 400));
        throw new Error(`daemon pid ${pid} (exit ${child?.exitCode ?? child?.signalCode ?? 'none yet'}): ${error.message}; its last log lines:\n${own.join('\n')}`);
      },
    );
  onCleanup('daemon under test', async () => {
    const c = child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    // The table stays when the daemon exits (fail-closed): it goes with the namespace.
  });
  return {
    lines,
    stateDir,
    onLine(fn: (l: Line) => void): () => void {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    async start(): Promise<void> {
      const { pid } = spawnOne();
      await (starting = ready(pid));
    },
    /** SIGKILL, respawn at once; the recovery: SIGKILL → READY=1 of the new process (and → its spawn). */
    async kill(): Promise<{ recoveryMs: number; startupMs: number; firstLineMs: number; reconcileMs: number }> {
      const t0 = now();
      child!.kill('SIGKILL');
      await exited;
      const { pid, t } = spawnOne();
      const tReady = await (starting = ready(pid));
      const own = lines.filter((l) => l.pid === pid);
      return {
        recoveryMs: tReady - t0,
        startupMs: tReady - t,
        // node and the modules loaded: spawn → its first log line
        firstLineMs: (own[0]?.t ?? NaN) - t,
        reconcileMs: Number(own.find((l) => l.line.msg === 'reconciled')?.line.ms ?? NaN),
      };
    },
    async reload(variant: string): Promise<void> {
      await starting.catch(() => {});
      const tmp = `${policyFile}.tmp`;
      writeFileSync(tmp, policyText(variant));
      renameSync(tmp, policyFile);
      child?.kill('SIGHUP');
    },
    get pid(): number {
      return child?.pid ?? 0;
    },
  };
}

// ------------------------------------------------------------------ the end state, read from the kernel and the engine

interface EndState {
  running: number;
  unjudged: string[];
  stale: string[];
  capRunning: number;
}

async function endState(netns: string, docker: Docker): Promise<EndState> {
  const list = await docker.listContainers({ all: false });
  const expectPorts = new Set<number>();
  const expectAddrs = new Set<string>();
  let capRunning = 0;
  for (const c of list) {
    const info = await docker.getContainer(c.Id).inspect();
    if ((info.HostConfig.CapAdd ?? []).some((cap: string) => /SYS_ADMIN$/.test(cap))) capRunning++;
    for (const p of c.Ports) if (p.PublicPort) expectPorts.add(p.PublicPort);
    const addr = info.NetworkSettings.Networks?.bridge?.IPAddress;
    if (addr) expectAddrs.add(addr);
  }
  let table = '';
  try {
    table = nsExec(netns, ['nft', '-nn', 'list', 'table', 'inet', 'dockwarden']);
  } catch {
    // no table: everything counts as unjudged
  }
  /** The text of every set whose name matches, from one listing (the allowances are 64 shards). */
  const sets = (name: RegExp): string => table.split(/\n\tset /).filter((block) => name.test(block.split(' ', 1)[0]!)).join('\n');
  const set = (name: string): string => sets(new RegExp(`^${name}$`));
  // `-nn` prints the protocol as its number (tcp = 6). Wildcard bindings (the soak's) are `proto . port`.
  const ports = new Set([...`${set('ports4')}\n${set('wildcard4')}`.matchAll(/\b6 \. (\d+)\b/g)].map((m) => Number(m[1])));
  const allowed = new Set([...sets(/^allow4_\d\d$/).matchAll(/\. 6 \. (\d+) \. 198\.51\.100\.10\b/g)].map((m) => Number(m[1])));
  const endpoints = new Set([...set('endpoints4').matchAll(/(\d+\.\d+\.\d+\.\d+) \. 6 \. 80\b/g)].map((m) => m[1]!));
  const unjudged: string[] = [];
  const stale: string[] = [];
  for (const p of expectPorts) {
    if (!ports.has(p)) unjudged.push(`port ${p} not in ports4/wildcard4`);
    if (!allowed.has(p)) unjudged.push(`port ${p} not in allow4_NN`);
  }
  for (const a of expectAddrs) if (!endpoints.has(a)) unjudged.push(`${a} not in endpoints4`);
  for (const p of ports) if (!expectPorts.has(p)) stale.push(`ports4 ${p}`);
  for (const p of allowed) if (!expectPorts.has(p)) stale.push(`allow4 ${p}`);
  for (const a of endpoints) if (!expectAddrs.has(a)) stale.push(`endpoints4 ${a}`);
  return { running: list.length, unjudged, stale, capRunning };
}

// ------------------------------------------------------------------ containers

const startOne = (docker: Docker, port: number, cap: boolean): Promise<string> =>
  startContainer({
    hostPort: port,
    engine: docker,
    // httpd as PID 1 ignores SIGTERM: a dockerd restart would wait 10 s per container
    create: { StopSignal: 'SIGKILL', HostConfig: cap ? { CapAdd: ['SYS_ADMIN'] } : {} },
  });

// ------------------------------------------------------------------ the run

interface Window {
  readonly kind: string;
  readonly from: number;
  to: number;
}

await main('chaos', LIMIT_SECONDS, { hostTable: false, docker: false, daemon: false }, async () => {
  // Isolated (own namespaces, own dockerd): the preflight's shared-environment refusals do not apply.
  if (!existsSync(DAEMON_CLI)) throw new Refusal(`${DAEMON_CLI} missing: npm run build`);
  await testDocker.getImage(TEST_IMAGE).inspect().catch(() => {
    throw new Refusal(`image ${TEST_IMAGE} missing on the test engine: bash scripts/test-env.sh up`);
  });
  const t0 = now();
  const { soak, probe } = namespaces();
  const dockerd = soakDockerd(soak);
  await dockerd.start();
  await loadTestImage(dockerd.docker);
  const docker = dockerd.docker;

  // The receiver, in the soak namespace.
  const receiver = fork(join(ROOT, 'scripts/bench/chaos-receiver.ts'), [KEY.toString('base64')], {
    execPath: 'nsenter', execArgv: [`--net=/run/netns/${soak}`, '--', process.execPath, '--import', LOADER], env: cleanEnv(), cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  onCleanup('webhook receiver', () => receiver.connected && receiver.kill('SIGKILL'));
  const received = new Set<string>();
  const receiverUrl = await new Promise<string>((resolve, reject) => {
    receiver.on('message', (m: { url?: string; id?: string }) => {
      if (m.url) resolve(m.url);
      if (m.id) received.add(m.id);
    });
    receiver.once('exit', (code) => reject(new Error(`webhook receiver exited ${code}`)));
  });
  const receiverCmd = (cmd: 'down' | 'up'): Promise<void> =>
    new Promise((resolve) => {
      const on = (m: Record<string, unknown>) => m[cmd] && (receiver.off('message', on), resolve());
      receiver.on('message', on);
      receiver.send(cmd);
    });

  const prober = startProber(probe);
  // When our table existed, from the kernel's notifications: each flush breach came before or after the repair.
  const timeline = tableTimeline(soak);
  onCleanup('table timeline', () => timeline.stop());
  await timeline.ready;

  // ---------------------------------------------------------------- control: no daemon, no table
  say(`# chaos: ${QUICK ? 'quick' : 'full'} run; netns ${soak} (dockerd, daemon, receiver) and ${probe} (probers)`);
  const controlIds: string[] = [];
  for (let i = 0; i < CONTROL_CONTAINERS; i++) {
    const port = BASE_PORT + PORTS + i;
    prober.send(`watch ${port}`);
    controlIds.push(await startOne(docker, port, i % 4 === 3));
    prober.send(`open ${port}`);
  }
  await sleep(5000);
  const control = await prober.stats();
  const controlEnd = await endState(soak, docker);
  for (let i = 0; i < CONTROL_CONTAINERS; i++) prober.send(`unwatch ${BASE_PORT + PORTS + i}`), prober.send(`close ${BASE_PORT + PORTS + i}`);
  await Promise.all(controlIds.map((id) => docker.getContainer(id).remove({ force: true })));
  const controlFigures = {
    deniedCompleted: control.breaches.length,
    allowedSuccess: control.allowedAttempts ? control.allowedOk / control.allowedAttempts : null,
    unjudged: controlEnd.unjudged.length,
    capRunning: controlEnd.capRunning,
  };
  say(`control (no daemon): denied connections completed ${controlFigures.deniedCompleted}, containers unjudged ${controlEnd.unjudged.length}, forbidden-capability containers running ${controlEnd.capRunning}`);
  if (controlFigures.deniedCompleted === 0 || controlEnd.unjudged.length === 0 || controlEnd.capRunning === 0) {
    throw new BenchBroken('the control phase saw no exposure: the probers or counters are broken');
  }
  await sleep(1000); // the denied loops of the control ports end
  const baseline = await prober.stats();

  // ---------------------------------------------------------------- the soak
  const daemon = daemonSupervisor(soak, dockerd.socket, receiverUrl);
  const judgedIds = new Set<string>();
  const judgedWaiters = new Map<string, () => void>();
  const raised = new Set<string>();
  daemon.onLine((l) => {
    const c = l.container as { id?: string; running?: boolean } | undefined;
    if (l.msg === 'container judged' && c?.id && c.running === true) judgedIds.add(c.id), judgedWaiters.get(c.id)?.();
    const alert = l.alert as { id?: string } | undefined;
    if (l.msg === 'alert' && alert?.id) raised.add(alert.id);
  });
  await daemon.start();
  say(`daemon up (pid ${daemon.pid}); ${STARTS} starts, ${DOCKERD_RESTARTS} dockerd restarts, ${DAEMON_KILLS} SIGKILLs, ${FLUSHES} flushes, receiver down ${RECEIVER_DOWN_MS / 1000} s, reload every ${RELOAD_EVERY_MS / 1000} s`);

  const windows: Window[] = [];
  const openWindow = (kind: string): Window => {
    const w = { kind, from: Date.now(), to: Infinity };
    windows.push(w);
    return w;
  };
  let started = 0;
  let startFailures = 0;
  let notJudgedInTime = 0;
  let capStarted = 0;
  let capKilled = 0;
  const capLifetimes: number[] = [];
  const freePorts = Array.from({ length: PORTS }, (_, i) => BASE_PORT + i);
  const openPorts = new Set<number>();
  let dockerGate: Promise<void> = Promise.resolve();
  let dockerEpoch = 0; // bumped when a dockerd restart begins: containers of an older epoch are dying
  const history: Array<{ port: number; ip: string; born: number; gone: number }> = [];
  let stopping = false;
  let seq = 0;

  const waitJudged = (id: string, ms: number): Promise<boolean> =>
    judgedIds.has(id)
      ? Promise.resolve(true)
      : new Promise((resolve) => {
          const t = setTimeout(() => (judgedWaiters.delete(id), resolve(false)), ms);
          judgedWaiters.set(id, () => (clearTimeout(t), judgedWaiters.delete(id), resolve(true)));
        });

  const worker = async (): Promise<void> => {
    while (!stopping && started < STARTS) {
      await dockerGate;
      const port = freePorts.shift()!;
      const cap = ++seq % CAP_EVERY === 0;
      prober.send(`watch ${port}`);
      let id: string;
      try {
        id = await startOne(docker, port, cap);
      } catch (error) {
        if (error instanceof Aborted) return;
        startFailures++;
        prober.send(`unwatch ${port}`);
        freePorts.push(port);
        await sleep(500);
        continue;
      }
      started++;
      const born = Date.now();
      const epoch = dockerEpoch;
      const entry = { port, ip: await docker.getContainer(id).inspect().then((i) => i.NetworkSettings.Networks?.bridge?.IPAddress ?? '?', () => '?'), born, gone: Infinity };
      history.push(entry);
      const last = started >= STARTS;
      if (cap) {
        capStarted++;
        // Killed by the daemon: the container stops running on its own.
        const deadline = Date.now() + 15_000;
        for (; Date.now() < deadline; await sleep(100)) {
          const running = await docker.getContainer(id).inspect().then((i) => i.State.Running, () => false);
          if (!running) {
            capKilled++;
            capLifetimes.push(Date.now() - born);
            break;
          }
        }
      } else if (await waitJudged(id, 10_000)) {
        if (epoch === dockerEpoch) prober.send(`open ${port}`), openPorts.add(port);
      } else notJudgedInTime++;
      await sleep(1000 + Math.random() * 1500);
      if (last || started >= STARTS) return; // each worker's last container stays: the end state is judged with containers running
      prober.send(`close ${port}`);
      openPorts.delete(port);
      await docker.getContainer(id).remove({ force: true }).catch(() => {});
      entry.gone = Date.now();
      // Watched a little past its removal: a rule removed too early would show here.
      void sleep(2000).then(() => (prober.send(`unwatch ${port}`), freePorts.push(port)));
    }
  };

  // Faults, spread over the run by progress (starts done), one at a time.
  type Fault = { at: number; kind: 'dockerd-restart' | 'daemon-kill' | 'flush' };
  const faults: Fault[] = [
    ...Array.from({ length: DOCKERD_RESTARTS }, (_, i) => ({ at: ((i + 0.5) / DOCKERD_RESTARTS) * 0.9, kind: 'dockerd-restart' as const })),
    ...Array.from({ length: DAEMON_KILLS }, (_, i) => ({ at: (i / DAEMON_KILLS) * 0.9 + 0.01, kind: 'daemon-kill' as const })),
    // A flush shortly before a dockerd restart: Docker's own rules (DNAT, its chains) come back only then.
    ...Array.from({ length: FLUSHES }, (_, i) => ({ at: ((2 * i + 0.5) / DOCKERD_RESTARTS) * 0.9 - 0.02, kind: 'flush' as const })),
  ].sort((a, b) => a.at - b.at);
  const recoveries: Array<{ recoveryMs: number; startupMs: number; firstLineMs: number; reconcileMs: number }> = [];
  const dockerdRestartMs: number[] = [];
  const chaos = async (): Promise<void> => {
    let afterFlush = false;
    for (const f of faults) {
      // After a flush Docker cannot publish ports (its chains are gone) until it restarts: no starts
      // would come, so its restart follows after a fixed time, the drift repair's window and some.
      if (afterFlush) await sleep(DRIFT_SECONDS * 1000 + 5000);
      else while (!stopping && started < f.at * STARTS) await sleep(100);
      if (stopping) return;
      afterFlush = f.kind === 'flush';
      const tf = now();
      if (f.kind === 'daemon-kill') {
        const w = openWindow('daemon-absent');
        recoveries.push(await daemon.kill());
        w.to = Date.now();
      } else if (f.kind === 'flush') {
        openWindow('flush').to = Date.now() + DRIFT_SECONDS * 1000 + 1000;
        nsExec(soak, ['nft', 'flush', 'ruleset']);
      } else {
        let open!: () => void;
        dockerGate = new Promise((r) => (open = r));
        const w = openWindow('dockerd-restart');
        dockerEpoch++;
        for (const p of openPorts) prober.send(`close ${p}`); // its containers die with it (no live-restore)
        openPorts.clear();
        try {
          await dockerd.stop();
          await dockerd.start();
        } finally {
          open(); // on failure too: the workers see the error (or stop) instead of waiting for ever
        }
        dockerdRestartMs.push(now() - tf);
        w.to = Date.now();
      }
      say(`  ${f.kind} at ${started} starts: ${(now() - tf).toFixed(0)} ms`);
      // Faults do not overlap: each breach or failure belongs to one of them (a flush's restart excepted).
      if (f.kind !== 'flush') await sleep(5000);
    }
  };
  let reloads = 0;
  const reloadTimer = setInterval(() => void daemon.reload(++reloads % 2 === 1 ? 'b' : 'a'), RELOAD_EVERY_MS);
  onCleanup('reload timer', () => clearInterval(reloadTimer));
  const receiverOutage = (async () => {
    while (!stopping && started < 0.3 * STARTS) await sleep(200);
    const w = openWindow('receiver-down');
    await receiverCmd('down');
    await sleep(RECEIVER_DOWN_MS);
    await receiverCmd('up');
    w.to = Date.now();
  })();

  const soakT0 = now();
  // A fault that fails (a daemon that never comes back) ends the churn too, then the bench with it.
  const stopOnError = (p: Promise<void>): Promise<void> => p.catch((error: unknown) => ((stopping = true), Promise.reject(error)));
  const chaosDone = stopOnError(chaos());
  const outageDone = stopOnError(receiverOutage);
  chaosDone.catch(() => {});
  outageDone.catch(() => {});
  await Promise.all(Array.from({ length: WORKERS }, worker));
  stopping = true;
  await chaosDone;
  await outageDone;
  clearInterval(reloadTimer);
  const soakSeconds = (now() - soakT0) / 1000;

  // ---------------------------------------------------------------- the end state
  // Converged within 60 s: rules match the running containers (a last drift check and reconcile had time).
  let end = await endState(soak, docker);
  const settleT0 = now();
  while ((end.unjudged.length > 0 || end.stale.length > 0 || end.capRunning > 0) && now() - settleT0 < 60_000) {
    await sleep(1000);
    end = await endState(soak, docker);
  }
  const settleMs = now() - settleT0;
  // Every raised alert delivered, within 120 s of the end (the backoff tops out at 60 s).
  const drainT0 = now();
  while ([...raised].some((id) => !received.has(id)) && now() - drainT0 < 120_000) await sleep(500);
  const lost = [...raised].filter((id) => !received.has(id));
  const unlogged = [...received].filter((id) => !raised.has(id));
  const final = await prober.stats();
  // The floor of a recovery, in the same run: a bare node printing one line (spawn → that line).
  const nodeFloor: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = now();
    await new Promise<void>((resolve) => spawn(process.execPath, ['-e', 'console.log(1)'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'ignore'] }).stdout!.once('data', () => resolve()));
    nodeFloor.push(now() - t);
  }
  const floor = stats(nodeFloor);

  const breaches = final.breaches.slice(baseline.breaches.length);
  // The most specific window a moment fell in (the receiver's outage spans several others).
  const PRIORITY = ['daemon-absent', 'flush', 'dockerd-restart', 'receiver-down'];
  const inWindow = (t: number): string =>
    PRIORITY.find((kind) => windows.some((w) => w.kind === kind && t >= w.from && t <= w.to + 1000)) ?? 'none';
  const breachesBy: Record<string, number> = {};
  for (const b of breaches) breachesBy[inWindow(b.t)] = (breachesBy[inWindow(b.t)] ?? 0) + 1;
  const allowedAttempts = final.allowedAttempts - baseline.allowedAttempts;
  const allowedOk = final.allowedOk - baseline.allowedOk;
  const failures = final.allowedFailures.slice(baseline.allowedFailures.length);
  const failuresBy: Record<string, number> = {};
  for (const f of failures) failuresBy[inWindow(f.t)] = (failuresBy[inWindow(f.t)] ?? 0) + 1;
  const reloaded = daemon.lines.filter((l) => l.line.msg === 'policy reloaded').length;
  const rec = stats(recoveries.map((r) => r.recoveryMs));
  // Each breach with the container that held the port then, and the one that held its address before it.
  const explain = (b: { port: number; t: number }): string => {
    const holder = history.filter((h) => h.port === b.port && h.born - 2000 <= b.t).at(-1);
    const before = holder ? history.filter((h) => h.ip === holder.ip && h.born < holder.born).at(-1) : undefined;
    return `${inWindow(b.t)} port ${b.port} at ${holder ? `born+${b.t - holder.born} ms, removal${b.t >= holder.gone ? '+' : ''}${Number.isFinite(holder.gone) ? b.t - holder.gone : '∞'} ms, ${holder.ip}` : '?'}; address held before by port ${before?.port ?? '-'} (gone ${before ? `${holder!.born - before.gone} ms before this start` : '-'})`;
  };
  const firstOfEach = new Map<number, { port: number; t: number }>();
  for (const b of breaches) if (!firstOfEach.has(b.port)) firstOfEach.set(b.port, b);
  const recStartup = stats(recoveries.map((r) => r.startupMs));
  const recFirstLine = stats(recoveries.map((r) => r.firstLineMs));
  const recReconcile = stats(recoveries.map((r) => r.reconcileMs));

  say(`soak: ${started} starts (${capStarted} with SYS_ADMIN), ${startFailures} failed starts, ${notJudgedInTime} not judged within 10 s, in ${soakSeconds.toFixed(0)} s`);
  say(`denied connections completed: ${breaches.length} (target 0) of ${final.deniedAttempts - baseline.deniedAttempts} attempts; by window ${JSON.stringify(breachesBy)}`);
  for (const b of [...firstOfEach.values()].slice(0, 12)) say(`  breach: ${explain(b)}`);
  // When in its window each flush breach came: our tables are back within ~0.1 s of the flush (bench flush-repair).
  const afterFlush = breaches.flatMap((b) => windows.filter((w) => w.kind === 'flush' && b.t >= w.from && b.t <= w.to + 1000).slice(-1).map((w) => b.t - w.from));
  if (afterFlush.length > 0) say(`  flush-window breaches, ms after the flush: ${fmtStats(stats(afterFlush))}`);
  // Each flush as the kernel saw it: our table deleted → back (the daemon's replace committed), and
  // the breaches of its window before and after that; those after are not our table's absence.
  const flushes = windows.filter((w) => w.kind === 'flush').map((w) => {
    const { deleted, back } = timeline.flushAfter(w.from);
    const inIt = breaches.filter((b) => b.t >= w.from && b.t <= w.to + 1000);
    return { tableBackMs: back - deleted, beforeRepair: inIt.filter((b) => b.t < back).length, afterRepair: inIt.filter((b) => !(b.t < back)) };
  });
  for (const f of flushes) {
    say(`  flush: our table deleted → back ${f.tableBackMs} ms; denied connections completed before it ${f.beforeRepair}, after it ${f.afterRepair.length}`);
    for (const b of f.afterRepair.slice(0, 5)) say(`    after the repair: ${explain(b)}`);
  }
  for (const l of daemon.lines.filter((l) => l.line.msg === 'ports docker-proxy serves, not yet judged, closed to every source')) say(`  the repair closed until judged: ${JSON.stringify(l.line.firewall)}`);
  // Whether the daemon closed ports not judged by dockerd's cgroup (README "Published ports"), as it said (once per change, per daemon process).
  const cgroupSaid = daemon.lines.filter((l) => /^(docker-proxy's ports not judged are closed by dockerd's cgroup|dockerd's cgroup not usable|dockerd's cgroup is gone)/.test(l.line.msg ?? ''));
  say(`dockerd's cgroup, as the daemon said: ${cgroupSaid.map((l) => `${l.line.msg}${(l.line.firewall as { reason?: string } | undefined)?.reason ? ` (${(l.line.firewall as { reason: string }).reason})` : ''}`).join('; ') || 'nothing'}`);
  say(`end state (settled in ${(settleMs / 1000).toFixed(1)} s): ${end.running} running, unjudged ${end.unjudged.length}, stale rules ${end.stale.length} (target 0 each)${end.unjudged.length + end.stale.length ? `: ${[...end.unjudged, ...end.stale].slice(0, 10).join('; ')}` : ''}`);
  say(`forbidden-capability containers running at the end: ${end.capRunning} (target 0); killed by the daemon ${capKilled}/${capStarted}, lifetime ${JSON.stringify(stats(capLifetimes))} ms`);
  say(`alerts: raised ${raised.size}, received ${raised.size - lost.length}, lost ${lost.length} (target 0); received without a log line ${unlogged.length}`);
  say(`allowed prober: ${allowedOk}/${allowedAttempts} = ${((allowedOk / Math.max(1, allowedAttempts)) * 100).toFixed(2)} %; failures by window ${JSON.stringify(failuresBy)}`);
  say(`recovery after SIGKILL (SIGKILL → READY=1 of the new process): p50 ${rec.p50.toFixed(0)} ms, p99 ${rec.p99.toFixed(0)} ms, max ${rec.max.toFixed(0)} ms (n=${rec.n}; target p99 ≤ 2000 ms); of which spawn → READY p99 ${recStartup.p99.toFixed(0)} ms, spawn → first log line (node + modules) p50 ${recFirstLine.p50.toFixed(0)} ms, start-up reconcile p50 ${recReconcile.p50.toFixed(0)} ms; floor: bare node spawn → first line p50 ${floor.p50.toFixed(0)} ms`);
  say(`dockerd restarts: ${dockerdRestartMs.length}, each ${JSON.stringify(stats(dockerdRestartMs))} ms; policy reloads ${reloads} sent, ${reloaded} logged; run ${((now() - t0) / 1000).toFixed(0)} s`);
  printJson('chaos', {
    quick: QUICK,
    control: controlFigures,
    starts: started,
    capStarted,
    startFailures,
    notJudgedInTime,
    deniedCompleted: breaches.length,
    deniedCompletedByWindow: breachesBy,
    deniedAttempts: final.deniedAttempts - baseline.deniedAttempts,
    endUnjudged: end.unjudged.length,
    endStale: end.stale.length,
    endRunning: end.running,
    capRunningAtEnd: end.capRunning,
    capKilled,
    alertsRaised: raised.size,
    alertsLost: lost.length,
    alertsUnlogged: unlogged.length,
    allowedSuccess: allowedOk / Math.max(1, allowedAttempts),
    allowedAttempts,
    allowedFailuresByWindow: failuresBy,
    recoveryMs: rec,
    spawnToReadyMs: recStartup,
    spawnToFirstLogMs: recFirstLine,
    startupReconcileMs: recReconcile,
    nodeStartFloorMs: floor,
    dockerdRestarts: dockerdRestartMs.length,
    flushes: FLUSHES,
    flushWindows: flushes.map((f) => ({ tableBackMs: f.tableBackMs, deniedBeforeRepair: f.beforeRepair, deniedAfterRepair: f.afterRepair.length })),
    reloadsSent: reloads,
    reloadsLogged: reloaded,
    soakSeconds: Math.round(soakSeconds),
    met: breaches.length === 0 && end.unjudged.length === 0 && end.stale.length === 0 && end.capRunning === 0 && lost.length === 0 && rec.p99 <= 2000,
  });
  receiver.send('close');
});
