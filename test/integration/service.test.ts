import t, { type Test } from 'tap';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { dockwarden } from '../helpers/cli.js';
import { spawnDaemon } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { sample, scrape } from '../helpers/metrics.js';
import { until } from '../helpers/until.js';

/**
 * dockwarden as installed on a server (issue #8): the units pass `systemd-analyze verify`, install →
 * run → uninstall in a scratch root (DESTDIR) leaves nothing behind, metrics are served on a unix
 * socket and on TCP only when asked for.
 */
const REPO = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const SUITE = 'dw-test.suite=service';

/** Every file and directory below `root`, relative, sorted. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (path.startsWith('usr/local/lib/dockwarden/node_modules/')) continue;
      out.push(entry.isDirectory() ? `${path}/` : path);
      if (entry.isDirectory()) walk(join(dir, entry.name), path);
    }
  };
  walk(root, '');
  return out.sort();
}

async function installScript(script: 'install.sh' | 'uninstall.sh', root: string, ...args: string[]) {
  return run('bash', [join(REPO, 'scripts', script), ...args], { env: { ...process.env, DESTDIR: root } });
}

function scratchRoot(t: Test): string {
  const root = mkdtempSync(join(tmpdir(), 'dw-root-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

/** `systemd-analyze verify` of the shipped units, with ExecStart pointed at `wrapper`. */
function verifyUnits(wrapper: string, edit: (unit: string) => string = (u) => u): { code: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'dw-units-'));
  try {
    const units = ['dockwarden.service', 'dockwarden-firewall.service', 'dockwarden-gate.socket'].map((name) => {
      const text = readFileSync(join(REPO, 'systemd', name), 'utf8').replaceAll('/usr/local/bin/dockwarden', wrapper);
      writeFileSync(join(dir, name), edit(text));
      return join(dir, name);
    });
    const result = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}


t.before(() => removeTestContainers(SUITE));
t.teardown(async () => {
  await removeTestContainers(SUITE);
  await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
});

t.test('install → run → uninstall in a scratch root', async (t) => {
  const root = scratchRoot(t);
  await installScript('install.sh', root);
  const installed = tree(root);
  for (const path of [
    'usr/local/bin/dockwarden',
    'usr/local/lib/dockwarden/dist/cli/main.js',
    'usr/local/lib/dockwarden/native/build/Release/dw_selinux.node',
    'usr/local/lib/dockwarden/native/build/Release/dw_netns.node',
    'usr/local/lib/dockwarden/native/build/Release/dw_nftevents.node',
    'usr/local/lib/dockwarden/native/build/Release/dw_heap.node',
    'usr/local/lib/dockwarden/native/build/Release/dw_procfs.node',
    'usr/local/lib/dockwarden/schema/policy.schema.json',
    'usr/local/lib/systemd/system/dockwarden.service',
    'usr/local/lib/systemd/system/dockwarden-firewall.service',
    'usr/local/lib/systemd/system/dockwarden-gate.socket',
    'usr/local/share/doc/dockwarden/README.md',
    'etc/dockwarden/config.yaml',
    'etc/dockwarden/policy.yaml',
    'var/lib/dockwarden/',
  ]) {
    t.ok(installed.includes(path), path);
  }
  t.equal(statSync(join(root, 'etc/dockwarden/config.yaml')).mode & 0o777, 0o600, 'the config may hold secrets');
  t.equal(statSync(join(root, 'var/lib/dockwarden')).mode & 0o777, 0o700);
  const wrapper = readFileSync(join(root, 'usr/local/bin/dockwarden'), 'utf8');
  t.match(wrapper, new RegExp(`exec ${process.execPath.replace(/[/.]/g, '\\$&')} /usr/local/lib/dockwarden/dist/cli/main.js "\\$@"`));
  const lib = join(root, 'usr/local/lib/dockwarden');
  t.notOk(existsSync(join(lib, 'node_modules/tap')), 'no dev dependencies');
  t.notOk(existsSync(join(lib, 'node_modules/dockerode')), 'dockerode is for tests only: the daemon speaks to Docker with node:http');
  t.ok(existsSync(join(lib, 'node_modules/pino')), 'runtime dependencies');

  // Both units verify against the installed wrapper; a unit with a typo does not (the check can fail).
  const wrapperInRoot = join(root, 'usr/local/bin/dockwarden');
  const verified = verifyUnits(wrapperInRoot);
  t.same(verified, { code: 0, output: '' }, 'systemd-analyze verify: clean');
  const broken = verifyUnits(wrapperInRoot, (u) => u.replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  t.match(broken.output, /dockwarden\.service:\d+: Unknown key 'NoNewPrivilege' in section \[Service\]/, 'a typo is reported');

  // The installed program runs: validate, then the daemon against the test engine.
  const cli = join(lib, 'dist/cli/main.js');
  const validated = await run(process.execPath, [cli, 'policy', 'validate', join(root, 'etc/dockwarden/policy.yaml')]);
  t.match(validated.stdout, /valid \(mode enforce/);
  const daemon = spawnDaemon({ policy: readFileSync(join(root, 'etc/dockwarden/policy.yaml'), 'utf8'), dockerSocket: DOCKER_SOCKET, cli, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  t.equal(await daemon.stop(), 0, 'the installed daemon stops cleanly');

  // Again: program replaced, the admin's files kept.
  writeFileSync(join(root, 'etc/dockwarden/policy.yaml'), 'version: 1\nmode: audit\n');
  await installScript('install.sh', root);
  t.equal(readFileSync(join(root, 'etc/dockwarden/policy.yaml'), 'utf8'), 'version: 1\nmode: audit\n', "an admin's policy is never overwritten");
  t.same(tree(root), installed, 'a second install changes no layout');

  await installScript('uninstall.sh', root);
  t.same(
    tree(root),
    ['etc/', 'etc/dockwarden/', 'etc/dockwarden/config.yaml', 'etc/dockwarden/policy.yaml', 'var/', 'var/lib/', 'var/lib/dockwarden/'],
    'uninstall keeps only the config, the policy and the state',
  );
  await installScript('uninstall.sh', root, '--purge');
  t.same(tree(root), [], '--purge leaves nothing behind');
  await installScript('uninstall.sh', root, '--purge');
  t.same(tree(root), [], 'and is idempotent');
});

t.test('metrics: on a unix socket by default, no TCP port; counters follow what the daemon does', async (t) => {
  const policy = 'version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n  host-namespaces: { namespaces: [pid], action: alert }\n';
  const hook = await new WebhookReceiver(null).up();
  t.teardown(() => hook.down());
  const alerts = `alerts:\n  webhooks:\n    - { url: "${hook.url}", format: slack }`;
  const daemon = spawnDaemon({ policy, dockerSocket: DOCKER_SOCKET, extraConfig: `firewall:\n  backend: nftables\n${alerts}` });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  const socket = { socketPath: daemon.metricsSocket };
  const before = (await scrape(socket)).body;

  const killed = await runContainer({ cmd: ['sleep', '3600'], labels: { 'dw-test.suite': 'service' }, hostConfig: { CapAdd: ['SYS_ADMIN'] } });
  await daemon.waitForLog((l) => l.msg === 'container killed' && (l.container as { id: string }).id === killed);
  const alerted = await runContainer({ cmd: ['sleep', '3600'], labels: { 'dw-test.suite': 'service' }, hostConfig: { PidMode: 'host' } });
  await daemon.waitForLog((l) => l.msg === 'container judged' && (l.container as { id: string }).id === alerted);

  // The judged line may be its create event's: its start event can come a moment later.
  const { status, body } = await until(async () => {
    const scraped = await scrape(socket);
    return (sample(scraped.body, 'dockwarden_docker_events_total{action="start"}') ?? 0) >= 2 ? scraped : undefined;
  }, 10_000, 'both start events counted');
  t.equal(status, 200);
  t.equal(sample(body, 'dockwarden_container_actions_total{action="kill",outcome="done"}'), 1);
  t.ok(sample(body, 'dockwarden_violations{check="host-namespaces"}')! >= 1, 'the --pid host container is a current violation');
  t.ok(sample(body, 'dockwarden_containers_watched')! >= 2);
  t.ok(sample(body, 'dockwarden_reconcile_seconds_count{outcome="ok"}')! >= 1);
  t.ok(sample(body, 'dockwarden_firewall_apply_seconds_count{kind="replace",outcome="ok"}')! >= 1, 'the first reconcile replaced the ruleset');
  t.equal(sample(before, 'dockwarden_container_actions_total{action="kill",outcome="done"}'), undefined, 'nothing was killed before');
  t.ok(sample(body, 'dockwarden_queue_tasks_total{outcome="completed"}')! > sample(before, 'dockwarden_queue_tasks_total{outcome="completed"}')!);
  t.equal((await scrape(socket, '/other')).status, 404);
  await hook.until(() => hook.requests >= 2); // the kill's violation and the --pid host one
  const delivered = (await scrape(socket)).body;
  const sink = /dockwarden_alert_deliveries_total\{sink="(webhook-[0-9a-f]{12})",outcome="delivered"\} (\d+)/.exec(delivered);
  t.ok(sink && Number(sink[2]) >= 2, 'alert deliveries counted per sink');
  t.equal(sample(delivered, `dockwarden_alert_queue{sink="${sink?.[1]}"}`), 0, 'nothing left waiting');

  const listening = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  t.notMatch(listening, new RegExp(`pid=${daemon.child.pid},`), 'the daemon listens on no TCP port');
  t.equal(await daemon.stop(), 0);
});

t.test('metrics on TCP only when configured; a live socket is never stolen', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  const tcp = spawnDaemon({ policy: 'version: 1\n', dockerSocket: DOCKER_SOCKET, metricsListen: `tcp://127.0.0.1:${port}`, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => tcp.stop('SIGKILL'));
  await tcp.waitForLog((l) => l.msg === 'serving metrics');
  t.match((await scrape({ host: '127.0.0.1', port })).body, /^# HELP dockwarden_/m);
  t.equal(await tcp.stop(), 0);

  const first = spawnDaemon({ policy: 'version: 1\n', dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => first.stop('SIGKILL'));
  await first.waitForLog((l) => l.msg === 'serving metrics');
  const second = spawnDaemon({ policy: 'version: 1\n', dockerSocket: DOCKER_SOCKET, metricsListen: `unix:${first.metricsSocket}`, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => second.stop('SIGKILL'));
  const refused = await second.waitForLog((l) => l.msg === 'cannot serve metrics; running without them');
  t.match((refused.err as { message: string }).message, /is in use by another process/);
  t.equal((await scrape({ socketPath: first.metricsSocket })).status, 200, "the first daemon's socket still answers");
  await second.stop();
  await first.stop();

  // A socket whose owner died without removing it (here: bound by a process that then exited).
  const dir = mkdtempSync(join(tmpdir(), 'dw-stale-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stale = join(dir, 'metrics.sock');
  execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', stale]);
  t.ok(statSync(stale).isSocket(), 'a stale socket file is there');
  const third = spawnDaemon({ policy: 'version: 1\n', dockerSocket: DOCKER_SOCKET, metricsListen: `unix:${stale}`, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => third.stop('SIGKILL'));
  await third.waitForLog((l) => l.msg === 'serving metrics');
  t.equal((await scrape({ socketPath: stale })).status, 200, 'a stale socket is replaced');
  await third.stop();
});
