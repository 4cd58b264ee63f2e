/**
 * Found by the chaos soak (scripts/bench/chaos.ts, issue #15): denied connections completed around an
 * `nft flush ruleset`, most of them after the daemon had put its table back. The flush takes Docker's
 * DNAT too (until dockerd restarts), so a published port is then served by docker-proxy on the input
 * path. Real dockerd (its own, in a namespace of its own), real netfilter, real clients in a second
 * namespace; the daemon runs there, its drift check at 300 s, so only the kernel's notification repairs.
 *
 * Each completed denied connection is logged with its time relative to the flush (the kernel's
 * deletion of our table, heard by a listener of the test's own), its port, and whether our table
 * existed then.
 *
 * dockerd runs in a cgroup v2 of its own, as systemd runs it (docker.service): the daemon closes
 * docker-proxy's ports not judged by that cgroup, in our table and in the guard.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type Docker from 'dockerode';
import { judged, spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { loadTestImage, netnsDockerd } from '../helpers/netns-dockerd.js';
import { tableTimeline } from '../helpers/table-timeline.js';
import { until } from '../helpers/until.js';

const HOST = '198.51.100.1';
const GOOD = '198.51.100.10';
const BAD = '198.51.100.20';
const JUDGED_PORT = 18150;
const UNJUDGED_PORT = 18151;
const policy = `version: 1
ports:
  default: deny
  rules:
    - { name: web, match: { port: ${JUDGED_PORT}-${UNJUDGED_PORT}/tcp }, allow: [${GOOD}] }
`;

// ------------------------------------------------------------------ namespaces

/** "host" (dockerd, the daemon, HOST) and "client" (GOOD and BAD), joined by a veth pair only they see. */
function namespaces(t: Test): { host: string; client: string } {
  const id = randomBytes(3).toString('hex');
  const host = `dw-fw-h-${id}`;
  const client = `dw-fw-c-${id}`;
  for (const ns of [host, client]) {
    execFileSync('ip', ['netns', 'add', ns]);
    t.teardown(() => execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }));
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  execFileSync('ip', ['-n', host, 'link', 'add', 'fwh0', 'type', 'veth', 'peer', 'name', 'fwc0', 'netns', client]);
  execFileSync('ip', ['-n', host, 'addr', 'add', `${HOST}/24`, 'dev', 'fwh0']);
  execFileSync('ip', ['-n', host, 'link', 'set', 'fwh0', 'up']);
  for (const a of [GOOD, BAD]) execFileSync('ip', ['-n', client, 'addr', 'add', `${a}/24`, 'dev', 'fwc0']);
  execFileSync('ip', ['-n', client, 'link', 'set', 'fwc0', 'up']);
  return { host, client };
}

// ------------------------------------------------------------------ the clients

// Denied: 3 loops per port, one connection at a time, 300 ms connect timeout, each completed
// handshake printed at once. Allowed: one HTTP GET at a time, each outcome printed.
const PROBER = `
const net = require('node:net');
const [host, good, bad, ...ports] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function attempt(port, source, timeout, http) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, localAddress: source });
    let done = false, buf = '';
    const end = (v) => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(v); };
    const t = setTimeout(() => end('timeout'), timeout);
    s.once('connect', () => (http ? s.write('GET / HTTP/1.0\\r\\n\\r\\n') : end('connected')));
    s.on('data', (d) => { buf += d; if (buf.includes('\\r\\n')) end(/^HTTP\\/1\\.[01] 200/.test(buf) ? 'ok' : 'status'); });
    s.once('error', (e) => end(String(e.code)));
  });
}
for (const p of ports.map(Number)) for (let i = 0; i < 3; i++) setTimeout(async () => {
  for (;;) {
    const s = Date.now();
    const v = await attempt(p, bad, 300, false);
    out({ denied: p, s, t: Date.now(), v });
    if (v !== 'timeout') await sleep(20);
  }
}, i * 100);
for (const p of ports.map(Number)) (async () => { for (;;) { out({ allowed: p, t: Date.now(), v: await attempt(p, good, 1000, true) }); await sleep(50); } })();
`;

interface Attempt {
  readonly denied?: number;
  readonly allowed?: number;
  /** A denied attempt's start: its SYN went out then (what the table present or not then decided). */
  readonly s?: number;
  /** When it ended, as `v`. */
  readonly t: number;
  readonly v: string;
}

function prober(t: Test, ns: string, ports: readonly number[]): { attempts: Attempt[] } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', PROBER, HOST, GOOD, BAD, ...ports.map(String)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  const attempts: Attempt[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => attempts.push(JSON.parse(line) as Attempt));
  return { attempts };
}

// ------------------------------------------------------------------ the daemon's Docker API, held at will

/** A unix socket forwarding to dockerd's; `hold()` stops both directions of every connection until `release()`. */
function holdableApi(t: Test, target: string): { socket: string; hold(): void; release(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dw-fw-api-'));
  const socket = join(dir, 'docker.sock');
  const sockets = new Set<Socket>();
  let held = false;
  const server = createServer((down) => {
    const up = connect(target);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
      if (held) s.pause();
    }
    down.pipe(up);
    up.pipe(down);
    down.on('close', () => up.destroy());
    up.on('close', () => down.destroy());
  }).listen(socket);
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    socket,
    hold: () => ((held = true), sockets.forEach((s) => s.pause())),
    release: () => ((held = false), sockets.forEach((s) => s.resume())),
  };
}

// ------------------------------------------------------------------ the test

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(docker: Docker, hostPort: number): Promise<string> {
  const container = await docker.createContainer({
    Image: TEST_IMAGE,
    Cmd: ['httpd', '-f', '-p', '80', '-h', '/var/www'],
    ExposedPorts: { '80/tcp': {} },
    HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(hostPort) }] } },
    StopSignal: 'SIGKILL',
  });
  await container.start();
  return container.id;
}

t.test('nft flush ruleset: no denied connection completes once our table is back, judged or not', async (t) => {
  const ns = namespaces(t);
  const dockerd = netnsDockerd(ns.host, `dw-fw-${randomBytes(3).toString('hex')}`, '10.215.0.1/24', { ownCgroup: true });
  t.teardown(() => dockerd.destroy());
  await dockerd.start();
  await loadTestImage(dockerd.docker);
  const api = holdableApi(t, dockerd.socket);
  const timeline = tableTimeline(ns.host);
  t.teardown(() => timeline.stop());
  await timeline.ready;

  const first = await run(dockerd.docker, JUDGED_PORT);
  const d: DaemonProcess = spawnDaemon({
    policy,
    dockerSocket: api.socket,
    extraConfig: 'firewall:\n  backend: nftables\n  driftCheckSeconds: 300\nreconcile:\n  intervalSeconds: 3600',
    wrapper: ['nsenter', `--net=/run/netns/${ns.host}`, '--'],
  });
  t.teardown(() => d.stop('SIGKILL'));
  await d.waitForLog(judged(first));
  await d.waitForLog((l) => l.msg === 'watching nftables changes to our tables');

  // A second container the daemon has not judged yet (its view of Docker held): before the flush
  // Docker DNATs to it and the fail-closed baseline drops what is not judged.
  api.hold();
  await run(dockerd.docker, UNJUDGED_PORT);
  const probe = prober(t, ns.client, [JUDGED_PORT, UNJUDGED_PORT]);
  await until(async () => probe.attempts.some((a) => a.allowed === JUDGED_PORT && a.v === 'ok') || undefined, 10_000, 'the allowed client served');
  await sleep(1000);
  const beforeFlush = probe.attempts.length;

  const repairsBefore = d.logs.length;
  const flushCommand = Date.now();
  execFileSync('ip', ['netns', 'exec', ns.host, 'nft', 'flush', 'ruleset']);
  await d.waitForLog((l) => d.logs.indexOf(l) >= repairsBefore && l.msg === 'firewall drift repaired', 10_000);
  await sleep(3000); // the repaired table with the second container still unjudged
  api.release();
  const second = (await dockerd.docker.listContainers()).find((c) => c.Ports.some((p) => p.PublicPort === UNJUDGED_PORT))!;
  await d.waitForLog(judged(second.Id), 30_000);
  await sleep(2000);

  const { deleted: flushed, back: restored } = timeline.flushAfter(flushCommand);
  t.comment(`flush (our table deleted) → our table back: ${restored - flushed} ms`);
  const breaches = probe.attempts.filter((a) => a.denied !== undefined && a.v === 'connected');
  // A breach is placed by its start: a connection whose SYN went out before our table was back may
  // complete just after it (the table's return is seen through nft monitor, a few ms late).
  const startedWithTable = (b: Attempt): boolean => timeline.presentAt(b.s!);
  for (const b of breaches) t.comment(`denied connection completed: ${b.t - flushed} ms after the flush (started at ${b.s! - flushed} ms), port ${b.denied}, our table ${startedWithTable(b) ? 'present' : 'absent'} at its start`);
  const described = (list: readonly Attempt[]) => list.map((b) => ({ port: b.denied, ms: b.s! - flushed }));
  t.same(probe.attempts.slice(0, beforeFlush).filter((a) => a.denied !== undefined && a.v === 'connected'), [], 'before the flush: no denied connection completed (the control)');
  t.same(described(breaches.filter(startedWithTable)), [], 'once our table is back: no denied connection completed, on the judged port nor on the one not judged yet');
  // Before our table is back only the guard filters (Docker's DNAT is gone too, and docker-proxy serves
  // every port): a copy of our table, so it closes what is judged, and by dockerd's cgroup a port
  // docker-proxy serves that is not judged yet.
  const before = breaches.filter((b) => !startedWithTable(b));
  t.same(described(before.filter((b) => b.denied === JUDGED_PORT)), [], 'before our table is back: none on the judged port (the guard)');
  t.same(described(before.filter((b) => b.denied === UNJUDGED_PORT)), [], 'nor on the one not judged yet (the guard, by dockerd\'s cgroup)');
  const lastOk = probe.attempts.filter((a) => a.allowed === JUDGED_PORT && a.v === 'ok').at(-1);
  t.ok(lastOk !== undefined && lastOk.t > restored, 'the allowed client is served after the repair (by docker-proxy: Docker DNATs no more)');
  t.ok(probe.attempts.some((a) => a.allowed === UNJUDGED_PORT && a.v === 'ok' && a.t > restored), 'and on the second port once judged');
  t.equal(await d.stop(), 0);
});

/** `nft list table inet NAME` in `ns`; null when it does not exist. */
function listed(ns: string, name: string): string | null {
  try {
    return execFileSync('ip', ['netns', 'exec', ns, 'nft', 'list', 'table', 'inet', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/** A connection from the namespace's own loopback to `port` completes. */
function servedOnLoopback(ns: string, port: number): boolean {
  const script = `require('node:net').connect(${port}, '127.0.0.1').once('connect', () => process.exit(0)).once('error', () => process.exit(1))`;
  try {
    execFileSync('nsenter', [`--net=/run/netns/${ns}`, '--', process.execPath, '-e', script], { stdio: 'ignore', timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

const guardStarted = (line: LogLine): boolean => line.msg === 'nft guard started';
const guardPid = (line: LogLine): number => (line.guard as { pid: number }).pid;

t.test('the guard: with the repair held, nft flush ruleset leaves denied sources dropped; it goes with its nft process, and with the daemon', async (t) => {
  const ns = namespaces(t);
  const dockerd = netnsDockerd(ns.host, `dw-fg-${randomBytes(3).toString('hex')}`, '10.216.0.1/24', { ownCgroup: true });
  t.teardown(() => dockerd.destroy());
  await dockerd.start();
  await loadTestImage(dockerd.docker);
  const timeline = tableTimeline(ns.host);
  t.teardown(() => timeline.stop());
  await timeline.ready;

  const id = await run(dockerd.docker, JUDGED_PORT);
  const d: DaemonProcess = spawnDaemon({
    policy,
    dockerSocket: dockerd.socket,
    extraConfig: 'firewall:\n  backend: nftables\n  driftCheckSeconds: 300\nreconcile:\n  intervalSeconds: 3600',
    wrapper: ['nsenter', `--net=/run/netns/${ns.host}`, '--'],
  });
  t.teardown(() => d.stop('SIGKILL'));
  await d.waitForLog(judged(id));
  await d.waitForLog((l) => l.msg === 'watching nftables changes to our tables');
  const probe = prober(t, ns.client, [JUDGED_PORT, UNJUDGED_PORT]);
  await until(async () => probe.attempts.some((a) => a.allowed === JUDGED_PORT && a.v === 'ok') || undefined, 10_000, 'the allowed client served');

  /** The daemon stopped (SIGSTOP: no repair) while `fault` runs and 3 s after; the attempts meanwhile. */
  const held = async (fault: () => unknown): Promise<Attempt[]> => {
    d.child.kill('SIGSTOP');
    await fault();
    const from = probe.attempts.length;
    await sleep(3000);
    return probe.attempts.slice(from);
  };
  const repairedAfter = async (release: () => void): Promise<void> => {
    const before = d.logs.length;
    release();
    await d.waitForLog((l) => d.logs.indexOf(l) >= before && l.msg === 'firewall drift repaired', 10_000);
    await until(async () => listed(ns.host, 'dockwarden')?.includes(GOOD) || undefined, 10_000, 'our table back');
  };
  const deniedDone = (attempts: readonly Attempt[]): Attempt[] => attempts.filter((a) => a.denied !== undefined && a.v === 'connected');

  // Our table alone deleted, the repair held: Docker's DNAT stays, so this is the forward path.
  const dnat = await held(() => execFileSync('ip', ['netns', 'exec', ns.host, 'nft', 'delete', 'table', 'inet', 'dockwarden']));
  t.equal(listed(ns.host, 'dockwarden'), null, 'our table deleted, the daemon held');
  t.ok(dnat.filter((a) => a.denied !== undefined).length > 10, 'the denied client kept trying');
  t.same(deniedDone(dnat), [], 'no denied connection completed on the DNAT path while only the guard filtered');
  t.ok(dnat.some((a) => a.allowed === JUDGED_PORT && a.v === 'ok'), 'the allowed client was served meanwhile');
  await repairedAfter(() => d.child.kill('SIGCONT'));

  // A container started while the daemon is held, then nft flush ruleset: docker-proxy serves its port,
  // nothing has judged it, and nothing has read docker-proxy's listeners; only the guard is left. (Not
  // started after a flush: Docker cannot publish a port then, its chains are gone until it restarts.)
  let started = '';
  const unjudged = await held(async () => {
    started = await run(dockerd.docker, UNJUDGED_PORT);
    execFileSync('ip', ['netns', 'exec', ns.host, 'nft', 'flush', 'ruleset']);
  });
  t.equal(listed(ns.host, 'dockwarden'), null, 'our table is gone while the daemon is held');
  t.ok(servedOnLoopback(ns.host, UNJUDGED_PORT), 'docker-proxy serves the new port (on loopback, which no rule of ours filters)');
  t.ok(unjudged.filter((a) => a.denied === UNJUDGED_PORT).length > 10, 'the denied client kept trying the new port');
  t.same(deniedDone(unjudged), [], 'no denied connection completed, on the new port not judged either (the guard, by dockerd\'s cgroup)');
  t.notOk(unjudged.some((a) => a.allowed === UNJUDGED_PORT && a.v === 'ok'), 'the new port is closed to every source until judged');
  await repairedAfter(() => d.child.kill('SIGCONT'));
  await d.waitForLog(judged(started), 30_000);
  await until(async () => probe.attempts.some((a) => a.allowed === UNJUDGED_PORT && a.v === 'ok') || undefined, 10_000, 'the allowed client served on the new port once judged');

  // nft flush ruleset, the repair held: Docker's DNAT goes too, so docker-proxy serves the port (the input path).
  const flushCommand = Date.now();
  const flushed = await held(() => execFileSync('ip', ['netns', 'exec', ns.host, 'nft', 'flush', 'ruleset']));
  t.equal(listed(ns.host, 'dockwarden'), null, 'our table is gone while the daemon is held');
  t.ok(!Number.isNaN(timeline.flushAfter(flushCommand).deleted) && Number.isNaN(timeline.flushAfter(flushCommand).back), 'deleted by the flush, and not back meanwhile');
  t.ok(flushed.filter((a) => a.denied !== undefined).length > 10, 'the denied client kept trying');
  t.same(deniedDone(flushed), [], 'no denied connection completed while only the guard filtered');
  t.ok(flushed.some((a) => a.allowed === JUDGED_PORT && a.v === 'ok'), 'the allowed client was served meanwhile (docker-proxy: the flush took Docker\'s DNAT)');
  await repairedAfter(() => d.child.kill('SIGCONT'));

  // The guard's nft process killed: the guard goes with it, and the daemon builds it again.
  const first = guardPid(await d.waitForLog(guardStarted));
  const killedAt = d.logs.length;
  process.kill(first, 'SIGKILL');
  const repaired = await d.waitForLog((l) => d.logs.indexOf(l) >= killedAt && l.msg === 'firewall drift repaired', 10_000);
  t.match((repaired.firewall as { drift: string }).drift, /guard/, 'the repair says the guard was lost');
  t.ok(d.logs.slice(killedAt).some((l) => l.msg === 'nft guard ended'), 'the end of its nft process is logged');
  const second = guardPid(await d.waitForLog((l) => d.logs.indexOf(l) >= killedAt && guardStarted(l)));
  t.not(second, first, 'a new nft process holds the guard');
  await until(async () => listed(ns.host, 'dockwarden_guard')?.includes(GOOD) || undefined, 10_000, 'the guard back, with its elements');

  // The daemon SIGKILLed: the guard goes with its nft process; our table stays, fail-closed.
  t.equal(await d.stop('SIGKILL'), null);
  await until(async () => listed(ns.host, 'dockwarden_guard') === null || undefined, 10_000, 'the guard gone with the daemon');
  t.ok(listed(ns.host, 'dockwarden')?.includes(GOOD), 'our table stays without the daemon');
  t.same(deniedDone(probe.attempts), [], 'no denied connection completed at any point');
});
