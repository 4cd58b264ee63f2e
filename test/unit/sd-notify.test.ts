import t from 'tap';
import { createNotifier, watchdogInterval } from '../../src/adapters/sd-notify.js';
import { bindNotifySocket } from '../helpers/notify-socket.js';

t.test('sends READY, STATUS, WATCHDOG and STOPPING datagrams to NOTIFY_SOCKET', async (t) => {
  const socket = bindNotifySocket();
  t.teardown(socket.close);
  const errors: Error[] = [];
  const notifier = createNotifier({ NOTIFY_SOCKET: socket.path }, (e) => errors.push(e));
  t.teardown(notifier.close);
  t.ok(notifier.enabled);
  notifier.ready('watching 3 containers');
  notifier.status('line one\nSTOPPING=1');
  notifier.watchdog();
  notifier.stopping('bye');
  await socket.next((f) => f[0] === 'STOPPING=1');
  t.same(socket.messages, [
    ['READY=1', 'STATUS=watching 3 containers', `MAINPID=${process.pid}`],
    ['STATUS=line one STOPPING=1'], // a newline in a status cannot forge a field
    ['WATCHDOG=1'],
    ['STOPPING=1', 'STATUS=bye'],
  ]);
  t.same(errors, []);
});

t.test('without NOTIFY_SOCKET nothing is sent and nothing fails', async (t) => {
  const notifier = createNotifier({}, () => t.fail('no error expected'));
  t.notOk(notifier.enabled);
  t.equal(notifier.watchdogMs, null);
  notifier.ready('x');
  notifier.close();
});

t.test('an abstract socket name is reported, not used', async (t) => {
  const errors: Error[] = [];
  const notifier = createNotifier({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' }, (e) => errors.push(e));
  t.notOk(notifier.enabled);
  t.match(errors[0]?.message, /not a filesystem path/);
});

t.test('a send to a socket nobody listens on is reported', async (t) => {
  const errors: Error[] = [];
  const notifier = createNotifier({ NOTIFY_SOCKET: '/nonexistent/notify.sock' }, (e) => errors.push(e));
  t.teardown(notifier.close);
  notifier.status('x');
  t.match(errors[0]?.message, /send/);
});

t.test('watchdog interval honours WATCHDOG_USEC and WATCHDOG_PID', async (t) => {
  t.equal(watchdogInterval({ WATCHDOG_USEC: '3000000' }), 3000);
  t.equal(watchdogInterval({ WATCHDOG_USEC: '3000000', WATCHDOG_PID: String(process.pid) }), 3000);
  t.equal(watchdogInterval({ WATCHDOG_USEC: '3000000', WATCHDOG_PID: String(process.pid + 1) }), null);
  t.equal(watchdogInterval({ WATCHDOG_USEC: '0' }), null);
  t.equal(watchdogInterval({ WATCHDOG_USEC: 'soon' }), null);
  t.equal(watchdogInterval({}), null);
});
