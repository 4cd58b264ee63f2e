import t from 'tap';
import { mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { judged, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { bindNotifySocket } from '../helpers/notify-socket.js';

const TEST_ENV = resolve(import.meta.dirname, '../../scripts/test-env.sh');

const POLICY = `version: 1
sources:
  clients: [198.51.100.0/24]
ports:
  default: deny
  rules:
    - name: web
      match: { port: 18080/tcp }
      allow: [clients]
`;

const portsOf = (line: LogLine) => line.ports as Array<{ port: string; rule: string | null; allow: string[] | 'any' }>;

t.before(removeTestContainers);
t.teardown(removeTestContainers);

t.test('sees containers started before it, during it, and across a dockerd restart', async (t) => {
  const before = await runContainer({ publish: ['18080:80/tcp'] });
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, env: { NOTIFY_SOCKET: notify.path } });
  t.teardown(() => daemon.stop('SIGKILL'));

  const ready = await notify.next((f) => f.includes('READY=1'));
  t.match(ready.find((f) => f.startsWith('STATUS=')), /^STATUS=watching \d+ containers; policy [0-9a-f]{12} \(enforce\)$/);
  // READY comes after the first reconcile, so the container that was already there has been judged.
  const first = await daemon.waitForLog(judged(before), 1);
  t.ok(portsOf(first).some((p) => p.port === '0.0.0.0:18080/tcp'), 'the IPv4 binding is listed');
  for (const p of portsOf(first)) t.same([p.rule, p.allow], ['web', ['198.51.100.0/24']], p.port);

  const during = await runContainer({});
  await daemon.waitForLog(judged(during));

  execFileSync('bash', [TEST_ENV, 'stop-dockerd'], { stdio: 'ignore' });
  await daemon.waitForLog((l) => l.msg === 'Docker unreachable; rules stay in place');
  execFileSync('bash', [TEST_ENV, 'up'], { stdio: 'ignore' });
  const afterRestart = await runContainer({});
  await daemon.waitForLog((l) => l.msg === 'reconnected to Docker', 60_000);
  await daemon.waitForLog(judged(afterRestart), 60_000);

  t.equal(await daemon.stop('SIGTERM'), 0, 'SIGTERM is a clean exit');
  t.ok(notify.messages.some((f) => f.includes('STOPPING=1')), 'STOPPING=1 sent');
});

t.test('a broken policy on SIGHUP is rejected and the last good one stays in force', async (t) => {
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');

  writeFileSync(daemon.policyFile, POLICY.replace('198.51.100.0/24', '198.51.100.300/24'));
  daemon.child.kill('SIGHUP');
  const rejected = await daemon.waitForLog((l) => l.msg === 'policy reload rejected; the last good policy stays in force');
  t.match((rejected.errors as string[])[0], /policy\.yaml:3:13: sources\.clients\[0\]: "198\.51\.100\.300\/24" is not an IP address or CIDR/);

  const id = await runContainer({ publish: ['18080:80/tcp'] });
  const line = await daemon.waitForLog(judged(id));
  t.same(portsOf(line)[0]!.allow, ['198.51.100.0/24'], 'the old policy still decides');

  // A valid edit is picked up from the file change alone, without a signal.
  writeFileSync(daemon.policyFile, POLICY.replace('198.51.100.0/24', '198.51.100.7'));
  await daemon.waitForLog((l) => l.msg === 'policy reloaded');
  const rejudged = await daemon.waitForLog((l) => judged(id)(l) && portsOf(l)[0]!.allow[0] === '198.51.100.7/32');
  t.equal(portsOf(rejudged)[0]!.rule, 'web');
  t.equal(await daemon.stop(), 0);
});

t.test('a policy linked from a checkout: saving the linked file reloads, without a signal', async (t) => {
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET });
  t.teardown(() => daemon.stop('SIGKILL'));
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  const checkout = mkdtempSync(join(tmpdir(), 'dw-checkout-'));
  t.teardown(() => rmSync(checkout, { recursive: true, force: true }));
  writeFileSync(join(checkout, 'policy.yaml'), `${POLICY}mode: audit\n`);
  symlinkSync(join(checkout, 'policy.yaml'), `${daemon.policyFile}.new`);
  renameSync(`${daemon.policyFile}.new`, daemon.policyFile);
  const reloaded = (mode: string) => (l: LogLine) => l.msg === 'policy reloaded' && (l.policy as { mode?: string } | undefined)?.mode === mode;
  await daemon.waitForLog(reloaded('audit'));
  t.pass('the file replaced by a link: reloaded');
  // Saved where it lives: nothing changes in the directory of the link.
  writeFileSync(join(checkout, 'policy.yaml'), POLICY);
  await daemon.waitForLog(reloaded('enforce'));
  t.pass('the linked file saved: reloaded');
  t.equal(await daemon.stop(), 0);
});

t.test('an invalid policy at start-up exits 1 with a located message', async (t) => {
  const daemon = spawnDaemon({ policy: 'version: 1\nports:\n  defualt: deny\n', dockerSocket: DOCKER_SOCKET });
  t.equal(await daemon.exited, 1);
  const fatal = daemon.logs.find((l) => l.msg === 'policy invalid; not starting');
  t.match((fatal?.errors as string[])[0], /policy\.yaml:3:3: ports: unknown key "defualt"; expected one of: default, rules, labels$/);
});

t.test('what starts before the policy is read only reads: an invalid policy leaves the kernel untouched', async (t) => {
  // The firewall's backend, its guard's nft process and the read of what is installed begin while the
  // policy is validated (src/app/daemon.ts): none of them may write. In a network namespace of its own,
  // whose ruleset is empty, so that anything written would show.
  const netns = `dw-early-${process.pid}`;
  execFileSync('ip', ['netns', 'add', netns]);
  t.teardown(() => execFileSync('ip', ['netns', 'delete', netns]));
  const tables = (): string => execFileSync('ip', ['netns', 'exec', netns, 'nft', 'list', 'tables'], { encoding: 'utf8' });
  const wrapper = ['nsenter', `--net=/run/netns/${netns}`];
  const invalid = spawnDaemon({ policy: 'version: 1\nports:\n  defualt: deny\n', dockerSocket: DOCKER_SOCKET, wrapper });
  t.equal(await invalid.exited, 1);
  t.equal(tables(), '', 'no table written');

  // The same namespace with a valid policy: the probes found nothing installed, so the baseline goes in.
  const valid = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, wrapper });
  t.teardown(() => valid.stop('SIGKILL'));
  await valid.waitForLog((l) => l.msg === 'fail-closed firewall baseline installed');
  await valid.waitForLog((l) => l.msg === 'reconciled');
  t.match(tables(), /table inet dockwarden\n/);
  t.equal(await valid.stop(), 0);
});

t.test('Docker unreachable at start-up: READY anyway, with a status that says why', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: '/run/dw-test/nothing-here.sock', env: { NOTIFY_SOCKET: notify.path } });
  t.teardown(() => daemon.stop('SIGKILL'));
  const ready = await notify.next((f) => f.includes('READY=1'));
  t.match(ready.find((f) => f.startsWith('STATUS=')), /^STATUS=Docker unreachable \(.*ENOENT.*\); retrying in \d+ s$/);
  t.equal(await daemon.stop(), 0);
});

t.test('watchdog pings follow WATCHDOG_USEC, and only for the pid it names', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '200000' } });
  t.teardown(() => daemon.stop('SIGKILL'));
  await notify.next((f) => f.includes('READY=1'));
  await notify.next((f) => f.includes('WATCHDOG=1'));
  const pings = (socket: typeof notify) => socket.messages.filter((f) => f.includes('WATCHDOG=1')).length;
  const before = pings(notify);
  await notify.next(() => pings(notify) >= before + 3, 5_000);
  t.pass('pings keep coming while healthy');

  // The healthy daemon stays up as the clock: five of its pings are five watchdog periods.
  const other = bindNotifySocket();
  t.teardown(other.close);
  const notOurs = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, env: { NOTIFY_SOCKET: other.path, WATCHDOG_USEC: '200000', WATCHDOG_PID: '1' } });
  t.teardown(() => notOurs.stop('SIGKILL'));
  await other.next((f) => f.includes('READY=1'));
  const clock = pings(notify);
  await notify.next(() => pings(notify) >= clock + 5, 5_000);
  t.notOk(other.messages.some((f) => f.includes('WATCHDOG=1')), 'no pings when WATCHDOG_PID names another process');
  t.equal(await daemon.stop(), 0);
  t.equal(await notOurs.stop(), 0);
});
