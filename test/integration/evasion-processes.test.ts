import t from 'tap';
import http from 'node:http';
import type Docker from 'dockerode';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

/**
 * Evasions of the process, exec and action checks (issue 13), each on the real engine with a real
 * daemon: a privileged exec's background child, an `execID` label forging exec events, a stop
 * dodged by the container's own stop signal and timeout, and an event line too long to read.
 * Privileged execs need the test runtime `dw-host-caps` (see runtime-checks.test.ts).
 */

const SUITE = 'dw-test.suite=evasion-processes';
const HOST_CAPS = 'dw-host-caps';

const POLICY = `version: 1
containers:
  stop-grace-seconds: 2
  capabilities: { forbidden: [SYS_ADMIN], action: kill }
  privileged-exec: { action: stop }
  host-namespaces: { namespaces: [uts], action: stop }
`;
// The periodic reconcile is far away: only events (and what they schedule) can find anything here.
const CONFIG = 'firewall:\n  backend: nftables\nreconcile:\n  intervalSeconds: 3600';

/** PID 1 exits on SIGTERM. */
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

const start = (hostConfig: Docker.HostConfig, options: { labels?: Record<string, string>; cmd?: string[] } = {}) =>
  runContainer({ cmd: options.cmd ?? SLEEPER, labels: { 'dw-test.suite': 'evasion-processes', ...options.labels }, hostConfig });

const inspect = (id: string) => docker.getContainer(id).inspect();
const actedOn = (id: string, msg: string) => (l: LogLine) => l.msg === msg && (l.container as { id?: string } | undefined)?.id === id;
const checksOf = (line: LogLine) => (line.violations as Array<{ check: string }>).map((v) => v.check);

let daemon: DaemonProcess;
const startDaemon = async (): Promise<void> => {
  daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
};

t.before(async () => {
  await removeTestContainers(SUITE);
  await startDaemon();
});
t.teardown(async () => {
  daemon.child.kill('SIGCONT');
  await daemon.stop('SIGKILL');
  await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  await removeTestContainers(SUITE);
});

t.test('a privileged exec with a megabyte of arguments makes a bounded alert (details are the container author\'s)', async (t) => {
  const id = await start({ Runtime: HOST_CAPS });
  await daemon.waitForLog(judged(id));
  // 400 arguments of 2,500 characters: 1 MB of argv, each argument within the kernel's per-argument limit.
  const argv = ['sleep', '30', ...Array.from({ length: 400 }, (_, i) => `${i}`.padEnd(2_500, 'x'))];
  const exec = await docker.getContainer(id).exec({ Cmd: ['sh', '-c', 'sleep 30', ...argv], Privileged: true, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
  const line = await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as { check?: string; container?: { id?: string } }).check === 'privileged-exec' && (l.alert as { container?: { id?: string } }).container?.id === id);
  const record = JSON.stringify(line.alert);
  t.ok(Buffer.byteLength(record) < 20_000, `the record is ${Buffer.byteLength(record)} bytes, not a megabyte`);
  const execs = (line.alert as { details: { execs: Array<{ command: string[] }> } }).details.execs;
  const command = execs.find((e) => e.command.length > 3)!.command;
  const kept = command.length - 1;
  t.ok(kept >= 8 && kept <= 32, `the first ${kept} arguments kept`);
  t.equal(command.at(-1), `[${argv.length + 3 - kept} more]`, 'and a marker saying how many are not');
  t.ok(command.every((arg) => arg.length <= 1_100), 'each argument cut');
  t.match(command[5], /^0x+…\[\d+ more characters\]$/, 'and says how much is missing');
});

/** Runs an exec detached and resolves once it has ended and dockerd no longer lists it in ExecIDs. */
async function execToEnd(id: string, cmd: string[], privileged: boolean, user = ''): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, Privileged: privileged, User: user, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
  await until(async () => !(await exec.inspect()).Running && !((await inspect(id)).ExecIDs ?? []).includes(exec.id), 20_000);
  return exec.id;
}

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Runs `during` with the daemon frozen (SIGSTOP): it reads the events only afterwards, as a loaded daemon would. */
async function whileFrozen<T>(during: () => Promise<T>): Promise<T> {
  daemon.child.kill('SIGSTOP');
  try {
    return await during();
  } finally {
    daemon.child.kill('SIGCONT');
  }
}

t.test("a privileged exec's background child keeps every capability: caught by reading every process", async (t) => {
  await daemon.stop('SIGKILL'); // the exec happens while no daemon watches: only the processes tell
  const id = await start({ Runtime: HOST_CAPS });
  await execToEnd(id, ['sh', '-c', 'sleep 1000 >/dev/null 2>&1 &'], true);
  t.same((await inspect(id)).ExecIDs ?? [], [], 'dockerd no longer lists the exec');

  // What the checks see: the child, by pid and name, with what it holds beyond the configuration.
  const dir = t.testdir({ 'policy.yaml': POLICY });
  const check = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: `${dir}/policy.yaml`, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  const findings = (JSON.parse(check.stdout) as CheckReport).findings.filter((f) => f.container.id === id);
  t.same(findings.map((f) => f.check), ['capabilities', 'privileged-exec']);
  const [caps, exec] = findings as [CheckReport['findings'][number], CheckReport['findings'][number]];
  const holders = caps.details.processes as Array<{ pid: number; comm: string; capabilities: string[] }>;
  t.same(holders.map((p) => [p.comm, p.capabilities]), [['sleep', ['CAP_SYS_ADMIN']]], 'only the child holds SYS_ADMIN');
  const beyond = exec.details.processes as Array<{ pid: number; comm: string; beyondConfiguration: string[] }>;
  t.same(beyond.map((p) => p.comm), ['sleep']);
  t.ok(beyond[0]!.beyondConfiguration.includes('CAP_SYS_MODULE'), 'its bounding set exceeds what the container was given');

  await startDaemon();
  const killed = await daemon.waitForLog(actedOn(id, 'container killed'), 10_000);
  t.same(checksOf(killed), ['capabilities', 'privileged-exec']);
  t.equal((await inspect(id)).State.Running, false);
});

t.test('a privileged exec that drops its effective capabilities still leaves a full bounding set: privileged-exec sees it', async (t) => {
  await daemon.stop('SIGKILL');
  const id = await start({ Runtime: HOST_CAPS });
  // uid 1000: CapEff empty, but a setuid binary would give back everything the bounding set holds.
  await execToEnd(id, ['sh', '-c', 'sleep 1001 >/dev/null 2>&1 &'], true, '1000');
  await startDaemon();
  const stopped = await daemon.waitForLog(actedOn(id, 'container stopped'), 10_000);
  t.same(checksOf(stopped), ['privileged-exec']);
});

t.test('an execID label cannot hide a short privileged exec that has ended before the daemon looks', async (t) => {
  const id = await start({ Runtime: HOST_CAPS }, { labels: { execID: 'forged' } });
  await daemon.waitForLog(judged(id));
  await whileFrozen(() => execToEnd(id, ['sh', '-c', 'exit 0'], true));
  const stopped = await daemon.waitForLog(actedOn(id, 'container stopped'), 10_000);
  t.same(checksOf(stopped), ['privileged-exec']);
  t.equal((await inspect(id)).State.Running, false);
});

t.test('without such a label, the exec id of the event is dockerd’s own and still names a short exec', async (t) => {
  const id = await start({ Runtime: HOST_CAPS });
  await daemon.waitForLog(judged(id));
  await whileFrozen(() => execToEnd(id, ['sh', '-c', 'exit 0'], true));
  const stopped = await daemon.waitForLog(actedOn(id, 'container stopped'), 10_000);
  t.same(checksOf(stopped), ['privileged-exec']);
});

t.test('an execID label naming an exec of another container redirects nothing', async (t) => {
  const other = await start({ Runtime: HOST_CAPS });
  await daemon.waitForLog(judged(other));
  const plainExec = await docker.getContainer(other).exec({ Cmd: ['sleep', '30'], AttachStdout: false, AttachStderr: false });
  await plainExec.start({ Detach: true });
  // The forging container names the other's (plain) exec; its own privileged exec must still count.
  const id = await start({ Runtime: HOST_CAPS }, { labels: { execID: plainExec.id } });
  await daemon.waitForLog(judged(id));
  await whileFrozen(() => execToEnd(id, ['sh', '-c', 'exit 0'], true));
  const stopped = await daemon.waitForLog(actedOn(id, 'container stopped'), 10_000);
  t.same(checksOf(stopped), ['privileged-exec']);
  t.equal((await inspect(other)).State.Running, true, 'the other container is not touched');
});

t.test("stop ignores the container's stop signal and timeout: SIGTERM, then SIGKILL after the policy's grace", async (t) => {
  const stopSignal = { StopSignal: 'SIGWINCH', StopTimeout: 3600 };
  // Exits on SIGTERM: proves the stop sent SIGTERM, not the container's SIGWINCH.
  const polite = await docker.createContainer({
    Image: 'dw-test/busybox:1',
    Cmd: SLEEPER,
    Labels: { 'dw-test': '1', 'dw-test.suite': 'evasion-processes' },
    HostConfig: { UTSMode: 'host' },
    ...stopSignal,
  });
  // PID 1 without a handler: SIGTERM is ignored in its pid namespace, only SIGKILL ends it.
  const stubborn = await docker.createContainer({
    Image: 'dw-test/busybox:1',
    Cmd: ['sleep', '86400'],
    Labels: { 'dw-test': '1', 'dw-test.suite': 'evasion-processes' },
    HostConfig: { UTSMode: 'host' },
    ...stopSignal,
  });
  await polite.start();
  await stubborn.start();
  await daemon.waitForLog(actedOn(polite.id, 'container stopped'), 10_000);
  await daemon.waitForLog(actedOn(stubborn.id, 'container stopped'), 15_000);
  const [p, s] = [await inspect(polite.id), await inspect(stubborn.id)];
  t.equal(p.State.Running, false);
  t.equal(p.State.ExitCode, 0, 'the polite one exited on SIGTERM');
  t.equal(s.State.Running, false);
  t.equal(s.State.ExitCode, 137, 'the stubborn one was killed');
});

t.test('an event line over 16 MiB (a huge label) schedules an immediate reconcile: the container is still judged', async (t) => {
  const body = { Image: 'dw-test/busybox:1', Cmd: SLEEPER, Labels: { 'dw-test': '1', 'dw-test.suite': 'evasion-processes', filler: 'x'.repeat(17 * 1024 * 1024) }, HostConfig: { CapAdd: ['SYS_ADMIN'] } };
  const id = await createRaw(body);
  await docker.getContainer(id).start();
  await daemon.waitForLog((l) => l.msg === 'Docker event skipped', 10_000);
  await daemon.waitForLog(actedOn(id, 'container killed'), 15_000);
  t.equal((await inspect(id)).State.Running, false);
});

/** POST /containers/create by hand: dockerode sends this body in a way dockerd refuses (431). */
function createRaw(body: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath: DOCKER_SOCKET, path: '/containers/create', method: 'POST', headers: { 'Content-Type': 'application/json' } }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode === 201) resolve((JSON.parse(text) as { Id: string }).Id);
        else reject(new Error(`create: HTTP ${response.statusCode} ${text}`));
      });
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  });
}
