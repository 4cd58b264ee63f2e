import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import t from 'tap';
import type { CisLine, CisReport } from '../../src/domain/cis/report.js';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon } from '../helpers/daemon.js';
import { DOCKER_SOCKET, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

/**
 * `dockwarden check --cis` on real containers of the private engine: per CIS item, which of ours fail
 * it. Other containers on the shared engine may fail items too, so only ours are asserted by name.
 */

const SUITE = 'dw-test.suite=cis-report';
const labels = { 'dw-test.suite': 'cis-report' };
const SLEEPER = ['sleep', '600'];
const scratch = mkdtempSync('/tmp/dwx-cis-');

// docker-socket with no paths: its defaults only. The engine here listens on a non-default path.
const POLICY = `version: 1
images: { default: allow, local: allow }
containers:
  capabilities: { forbidden: [SYS_ADMIN], action: alert }
  privileged: { action: alert }
  host-namespaces: { namespaces: [pid, net], action: alert }
  docker-socket: { action: alert }
  resource-limits: { require: [memory, cpu, pids], action: alert }
  no-new-privileges: { action: alert }
  apparmor-unconfined: { action: alert }
`;
writeFileSync(join(scratch, 'policy.yaml'), POLICY);
const env = { DOCKWARDEN_POLICY: join(scratch, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET };
// A hard link shares the socket's inode: made next to it (same filesystem).
const link = join(dirname(DOCKER_SOCKET), `dwx-cis-${process.pid}.sock`);

t.teardown(async () => {
  await removeTestContainers(SUITE);
  rmSync(link, { force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const names: Record<string, string> = {};
t.before(async () => {
  linkSync(DOCKER_SOCKET, link);
  const run = async (key: string, hostConfig: object) => {
    names[key] = `dwx-cis-${process.pid}-${key}`;
    await runContainer({ name: names[key], cmd: SLEEPER, labels, hostConfig });
  };
  await run('plain', {});
  await run('capadd', { CapAdd: ['SYS_ADMIN'] });
  await runContainer({ name: (names.capbound = `dwx-cis-${process.pid}-capbound`), cmd: SLEEPER, labels, hostConfig: { CapAdd: ['SYS_ADMIN'] }, user: '1000' });
  await run('hostpid', { PidMode: 'host' });
  await run('socket', { Binds: [`${DOCKER_SOCKET}:/var/run/docker.sock`] });
  await run('socketdir', { Binds: [`${dirname(DOCKER_SOCKET)}:/run/engine:ro`] });
  await run('socketlink', { Binds: [`${link}:/var/run/docker.sock`] });
  await run('confined', { Memory: 64 << 20, PidsLimit: 64, CpuShares: 512, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] });
});

const failingOf = (line: CisLine | undefined) => new Set(line?.failing.map((c) => c.name));
const ours = (line: CisLine | undefined) => Object.keys(names).filter((key) => failingOf(line).has(names[key]!)).sort();

t.test('check --cis --json: per item, the containers failing it, and why others are not judged', async (t) => {
  const result = await dockwarden(['check', '--cis', '--json'], env);
  t.equal(result.code, 1, result.stderr);
  const report = JSON.parse(result.stdout) as CisReport & { policy: { file: string } };
  t.match(report.benchmark, { name: 'CIS Docker Benchmark', version: '1.6.0' });
  const items = new Map(report.items.map((i) => [i.id, i]));
  t.match(items.get('5.4'), { status: 'WARN', check: 'capabilities' });
  t.same(ours(items.get('5.4')), ['capadd', 'capbound']);
  const bySeverity = new Map(items.get('5.4')!.failing.map((c) => [c.name, `${c.severity}: ${c.message}`]));
  t.equal(bySeverity.get(names.capadd!), 'high: holds forbidden capabilities: SYS_ADMIN');
  t.equal(bySeverity.get(names.capbound!), 'medium: may gain forbidden capabilities: SYS_ADMIN (in its bounding set; no process holds them)', 'uid 1000: CapEff empty');
  t.match(items.get('5.16'), { status: 'WARN', check: 'host-namespaces (pid)' });
  t.same(ours(items.get('5.16')), ['hostpid']);
  t.same(ours(items.get('5.10')), [], 'none of ours shares the network namespace');
  t.match(items.get('5.32'), { status: 'WARN', check: 'docker-socket' });
  t.same(ours(items.get('5.32')), ['socket', 'socketdir', 'socketlink'], "the configured engine socket, its directory and a hard link, with docker-socket's defaults");
  t.same(ours(items.get('5.11')), ['capadd', 'capbound', 'hostpid', 'plain', 'socket', 'socketdir', 'socketlink']);
  t.same(ours(items.get('5.12')), ['capadd', 'capbound', 'hostpid', 'plain', 'socket', 'socketdir', 'socketlink'], '--cpu-shares is a CPU priority');
  t.same(ours(items.get('5.26')), ['capadd', 'capbound', 'hostpid', 'plain', 'socket', 'socketdir', 'socketlink']);
  t.match(items.get('5.17'), { status: 'NOTE', reason: 'not checked by this policy', failing: [] });
  t.match(items.get('5.7'), { status: 'NOTE', check: null });
  const apparmor = existsSync('/sys/kernel/security/apparmor') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y');
  if (!apparmor) t.match(items.get('5.2'), { status: 'N/A', reason: /AppArmor is not enabled on this host/ });
  else t.same(ours(items.get('5.2')), [], 'docker-default confines ours');
});

t.test('check --cis: one line per item, the failing containers below it, the benchmark named', async (t) => {
  const result = await dockwarden(['check', '--cis'], env);
  t.equal(result.code, 1, result.stderr);
  const lines = result.stdout.split('\n');
  t.match(lines[0], /^CIS Docker Benchmark v1\.6\.0 \(numbered as docker-bench-security 1\.6\.0\): \d+ running containers, policy .*policy\.yaml \(enforce\)$/);
  const at = lines.findIndex((l) => l.startsWith('[WARN] 5.4   - Ensure that Linux kernel capabilities are restricted within containers [capabilities]'));
  t.not(at, -1, result.stdout);
  const below = lines.slice(at + 1, lines.findIndex((l, i) => i > at && !l.startsWith('[WARN]       *')));
  t.ok(below.some((l) => l.includes(`* ${names.capadd} (`) && l.includes('holds forbidden capabilities: SYS_ADMIN')), below.join('\n'));
  t.notOk(below.some((l) => l.includes(names.plain!)));
  t.ok(lines.includes('[NOTE] 5.17  - Ensure that the host\'s IPC namespace is not shared [host-namespaces (ipc)]: not checked by this policy'), result.stdout);
  t.match(lines.at(-2), /^\d+ items: \d+ PASS, \d+ WARN, \d+ NOTE, \d+ N\/A$/, 'privileged-exec is off: no line about what it saw');
});

t.test('a finished privileged exec: seen by check through the daemon\'s record, and said to be unseen without it', async (t) => {
  const stateDir = join(scratch, 'state');
  const daemon = spawnDaemon({ policy: `version: 1\nmode: audit\ncontainers:\n  privileged-exec: { action: alert }\n`, dockerSocket: DOCKER_SOCKET, stateDir, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(async () => {
    await daemon.stop('SIGKILL');
    await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  });
  const id = await runContainer({ cmd: SLEEPER, labels, hostConfig: { Runtime: 'dw-host-caps' } });
  await daemon.waitForLog(judged(id));
  const exec = await docker.getContainer(id).exec({ Cmd: ['sleep', '1'], Privileged: true, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
  await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as { check?: string; container?: { id?: string } }).check === 'privileged-exec' && (l.alert as { container?: { id?: string } }).container?.id === id);
  // Ended, and no longer listed by dockerd: only the record knows of it now.
  for (let i = 0; i < 200 && ((await exec.inspect()).Running || ((await docker.getContainer(id).inspect()).ExecIDs ?? []).includes(exec.id)); i++) await new Promise((r) => setTimeout(r, 100));
  const execsOf = (report: CheckReport) => report.findings.filter((f) => f.container.id === id && f.check === 'privileged-exec').map((f) => f.details.execs);
  const policy = join(scratch, 'exec-policy.yaml');
  writeFileSync(policy, 'version: 1\ncontainers:\n  privileged-exec: { action: alert }\n');
  const withRecord = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: policy, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: stateDir });
  const report = JSON.parse(withRecord.stdout) as CheckReport;
  t.match(report.privilegedExecs, { finished: 'recorded', since: /^\d{4}-/ });
  t.match(execsOf(report), [[{ id: exec.id, command: ['sleep', '1'], running: false }]]);
  const text = await dockwarden(['check'], { DOCKWARDEN_POLICY: policy, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: stateDir });
  t.match(text.stdout, /privileged execs: running ones as dockerd lists them, finished ones as the daemon recorded them since \d{4}-/);
  const without = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: policy, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: join(scratch, 'no-daemon') });
  t.same(execsOf(JSON.parse(without.stdout) as CheckReport), [], 'dockerd alone no longer shows it');
  t.same((JSON.parse(without.stdout) as CheckReport).privilegedExecs, { finished: 'not visible', since: null });
  const withoutText = await dockwarden(['check', '--cis'], { DOCKWARDEN_POLICY: policy, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: join(scratch, 'no-daemon') });
  t.match(withoutText.stdout, /privileged execs: only running ones are seen \(no record of a daemon in the state dir: finished ones are not visible\)/);
});
