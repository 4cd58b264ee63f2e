import t from 'tap';
import { resolve } from 'node:path';
import { spawnDaemon } from '../helpers/daemon.js';
import { DOCKER_SOCKET } from '../helpers/docker.js';
import { bindNotifySocket } from '../helpers/notify-socket.js';

/** The daemon under systemd's eyes (issue #8): start-up, stop, and the watchdog. */
const POLICY = 'version: 1\nports:\n  default: allow\n';
const CONFIG = 'firewall:\n  backend: nftables';
const pings = (messages: string[][]) => messages.filter((f) => f.includes('WATCHDOG=1')).length;
/** Runs the daemon with a real signal sent to it as node loads its composition root (test/helpers/signal-on-load.mjs). */
const signalOnLoad = (signal: NodeJS.Signals): readonly string[] => [
  'env',
  `NODE_OPTIONS=--import=${resolve(import.meta.dirname, '../helpers/signal-on-load.mjs')}`,
  `DW_TEST_SIGNAL=${signal}`,
];

t.test('SIGTERM during start-up is a clean stop, not a death by signal', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG, env: { NOTIFY_SOCKET: notify.path } });
  t.teardown(() => daemon.stop('SIGKILL'));
  // The policy is loaded before the firewall, the alert queues and the metrics socket are set up.
  await daemon.waitForLog((l) => l.msg === 'policy loaded');
  daemon.child.kill('SIGTERM');
  t.equal(await daemon.exited, 0);
  t.ok(daemon.logs.some((l) => l.msg === 'stopped'), 'it went through its shutdown');
  t.ok(notify.messages.some((f) => f.includes('STOPPING=1')));
});

// systemd counts a death by SIGHUP as a clean exit: Restart=on-failure would leave the host unguarded.
t.test('a SIGHUP while the modules load is moot: the daemon starts', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG, env: { NOTIFY_SOCKET: notify.path }, wrapper: signalOnLoad('SIGHUP') });
  t.teardown(() => daemon.stop('SIGKILL'));
  const outcome = await Promise.race([notify.next((f) => f.includes('READY=1')).then(() => 'ready'), daemon.exited.then(() => `exited (${daemon.child.signalCode ?? daemon.child.exitCode})`)]);
  t.equal(outcome, 'ready', 'it reached READY');
  t.ok(daemon.logs.some((l) => l.msg === 'reconciled'), 'after its start-up reconcile');
  t.equal(await daemon.stop(), 0);
});

t.test('a SIGTERM while the modules load is honoured once started: a clean stop', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG, env: { NOTIFY_SOCKET: notify.path }, wrapper: signalOnLoad('SIGTERM') });
  t.teardown(() => daemon.stop('SIGKILL'));
  t.equal(await daemon.exited, 0);
  t.equal(daemon.child.signalCode, null, 'not a death by signal');
  t.ok(daemon.logs.some((l) => l.msg === 'stopped'), 'it went through its shutdown');
  t.ok(notify.messages.some((f) => f.includes('STOPPING=1')));
});

t.test('watchdog: pings come from the running event loop; none while the process cannot run', async (t) => {
  const notify = bindNotifySocket();
  t.teardown(notify.close);
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG, env: { NOTIFY_SOCKET: notify.path, WATCHDOG_USEC: '200000' } });
  t.teardown(() => daemon.stop('SIGKILL'));
  await notify.next((f) => f.includes('READY=1'));
  await notify.next((f) => f.includes('WATCHDOG=1'));

  // A second, healthy daemon is the clock: its pings come every watchdog period.
  const clockSocket = bindNotifySocket();
  t.teardown(clockSocket.close);
  const clock = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: CONFIG, env: { NOTIFY_SOCKET: clockSocket.path, WATCHDOG_USEC: '200000' } });
  t.teardown(() => clock.stop('SIGKILL'));
  await clockSocket.next((f) => f.includes('WATCHDOG=1'));

  daemon.child.kill('SIGSTOP');
  // A datagram already in flight has arrived once the clock's next one has.
  const afterStop = pings(clockSocket.messages);
  await clockSocket.next(() => pings(clockSocket.messages) > afterStop, 5_000);
  const frozenAt = pings(notify.messages);
  const ticks = pings(clockSocket.messages);
  await clockSocket.next(() => pings(clockSocket.messages) >= ticks + 5, 10_000);
  t.equal(pings(notify.messages), frozenAt, 'no ping for 5 watchdog periods while stopped: systemd would restart it');
  daemon.child.kill('SIGCONT');
  await notify.next((f) => f.includes('WATCHDOG=1') && pings(notify.messages) > frozenAt, 5_000);
  t.pass('pings resume once it runs again');
  t.equal(await daemon.stop(), 0);
  t.equal(await clock.stop(), 0);
});
