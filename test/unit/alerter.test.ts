import t, { type Test } from 'tap';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { createAlerter } from '../../src/app/alerts/create-alerter.js';
import type { AlertsConfig, WebhookConfig } from '../../src/app/config.js';
import type { Alert } from '../../src/domain/alerts/alert.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';
import { parse5424, SyslogReceiver } from '../helpers/syslog-receiver.js';

const SECRET = 'whsec_' + Buffer.from('sixteen byte key, really').toString('base64');
const KEY = Buffer.from('sixteen byte key, really');
const CONTEXT = () => ({ host: 'h1', mode: 'enforce' as const, policyHash: 'ph' });
const FAST = { initialMs: 20, maxMs: 200 };

function logCapture() {
  const lines: Array<Record<string, unknown>> = [];
  const text: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text.push(chunk.toString());
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines, text };
}

const webhook = (url: string, over: Partial<WebhookConfig> = {}): WebhookConfig => ({ url, secret: SECRET, format: 'standard', minSeverity: 'info', timeoutMs: 2000, ...over });
const config = (over: Partial<AlertsConfig>): AlertsConfig => ({
  syslog: { target: '', facility: 'daemon', appName: 'dockwarden', minSeverity: 'info', timeoutMs: 2000 },
  webhooks: [],
  dedupeWindowSeconds: 0,
  queueLimit: 1000,
  ...over,
});
const dataOfSlack = (r: WebhookReceiver): string[] => [...r.deliveries.values()].map((d) => (d.json as { text: string }).text);
const dataOf = (receiver: WebhookReceiver): Alert[] => [...receiver.deliveries.values()].map((d) => (d.json as { data: Alert }).data);

async function receiver(t: Test, key: Buffer | null = KEY): Promise<WebhookReceiver> {
  const r = await new WebhookReceiver(key).up();
  t.teardown(() => r.down());
  return r;
}

t.test('fan-out honours each sink\'s minimum severity; the log gets everything', async (t) => {
  const hook = await receiver(t);
  const syslog = new SyslogReceiver();
  t.teardown(() => syslog.close());
  const { log, lines } = logCapture();
  const alerter = createAlerter(
    config({ webhooks: [webhook(hook.url, { minSeverity: 'high' })], syslog: { target: await syslog.udp(), facility: 'local3', appName: 'dw', minSeverity: 'info', timeoutMs: 1000 } }),
    t.testdir(), log, CONTEXT, { backoff: FAST },
  );
  t.teardown(() => alerter.close());
  const low = alerter.raise({ check: 'daemon.docker-back', severity: 'info', message: 'Docker reachable again' })!;
  const high = alerter.raise({ check: 'privileged', severity: 'high', action: 'kill', message: 'runs privileged', container: { id: 'c1', name: 'n', image: 'i' } })!;
  t.ok(await alerter.flush(5000), 'flushed');
  t.same(dataOf(hook).map((a) => a.id), [high.id], 'the webhook only gets high and above');
  t.same(hook.rejected, [], 'every request was correctly signed');
  await syslog.until(() => syslog.records.length === 2);
  const parsed = syslog.records.map(parse5424);
  t.same(parsed.map((p) => p.sd.get('dockwarden@32473')!.id), [low.id, high.id]);
  t.same(parsed.map((p) => [p.pri, p.appName]), [[19 * 8 + 6, 'dw'], [19 * 8 + 3, 'dw']]);
  t.same(lines.filter((l) => l.msg === 'alert').map((l) => (l.alert as Alert).id), [low.id, high.id]);
});

t.test('repeats of one check on one container are folded, then reported as N suppressed', async (t) => {
  const hook = await receiver(t);
  let clock = Date.parse('2026-12-01T20:00:00Z');
  const alerter = createAlerter(config({ webhooks: [webhook(hook.url)], dedupeWindowSeconds: 60 }), t.testdir(), logCapture().log, CONTEXT, { backoff: FAST, now: () => clock });
  t.teardown(() => alerter.close());
  const c1 = { id: 'c1', name: 'web', image: 'nginx' };
  const first = alerter.raise({ check: 'privileged', severity: 'high', message: 'runs privileged', container: c1, details: { n: 0 } });
  t.ok(first);
  for (let i = 1; i <= 4; i++) {
    clock += 10_000;
    t.equal(alerter.raise({ check: 'privileged', severity: 'high', message: 'runs privileged', container: c1, details: { n: i } }), null, `repeat ${i} folded`);
  }
  t.ok(alerter.raise({ check: 'privileged', severity: 'high', message: 'runs privileged', container: { ...c1, id: 'c2' } }), 'another container is not folded');
  t.ok(alerter.raise({ check: 'root-user', severity: 'low', message: 'runs as root', container: c1 }), 'another check is not folded');
  clock += 30_000; // the window is over
  const next = alerter.raise({ check: 'privileged', severity: 'high', message: 'runs privileged', container: c1 });
  t.ok(next, 'after the window it alerts again');
  await alerter.flush(5000);
  const got = dataOf(hook);
  const summary = got.find((a) => a.details.suppressed !== undefined)!;
  t.same(
    [summary.check, summary.container, summary.message, summary.details],
    ['privileged', c1, '4 repeats of this alert suppressed', { suppressed: 4, firstId: first!.id, windowSeconds: 60, last: { n: 4 } }],
  );
  t.ok(got.findIndex((a) => a.id === summary.id) < got.findIndex((a) => a.id === next!.id), 'the summary goes out before the next alert');
  t.equal(got.length, 5, 'first, c2, root-user, summary, next');
});

t.test('an endpoint that fails is retried with backoff until it answers; the id stays the same', async (t) => {
  const hook = await receiver(t);
  hook.failWith = 503;
  const { log, lines } = logCapture();
  const alerter = createAlerter(config({ webhooks: [webhook(hook.url)] }), t.testdir(), log, CONTEXT, { backoff: FAST });
  t.teardown(() => alerter.close());
  const a = alerter.raise({ check: 'daemon.firewall-drift-repaired', severity: 'high', message: 'm', action: 'repaired' })!;
  await hook.until(() => hook.requests >= 3);
  hook.failWith = null;
  await hook.until(() => hook.deliveries.has(a.id));
  t.equal(hook.deliveries.size, 1);
  const failures = lines.filter((l) => l.msg === 'alert delivery failed; retrying');
  t.ok(failures.length >= 3, 'each failure is logged');
  t.ok(failures.every((l) => (l.alert as { id: string }).id === a.id && typeof l.retryInMs === 'number'));
});

t.test('outage and restart: queued alerts survive a new alerter on the same state dir', async (t) => {
  const hook = await receiver(t);
  await hook.down();
  const state = t.testdir();
  const first = createAlerter(config({ webhooks: [webhook(hook.url)] }), state, logCapture().log, CONTEXT, { backoff: FAST });
  const ids = Array.from({ length: 20 }, (_, i) => first.raise({ check: 'daemon.docker-back', severity: 'low', message: `m${i}` })!.id);
  t.equal(await first.flush(300), false, 'flush gives up at its deadline with the endpoint down');
  first.close(); // the daemon exits

  await hook.up(); // same port
  const second = createAlerter(config({ webhooks: [webhook(hook.url)] }), state, logCapture().log, CONTEXT, { backoff: FAST });
  t.teardown(() => second.close());
  t.ok(await second.flush(10_000));
  t.same(dataOf(hook).map((a) => a.id), ids, 'every alert, in order, ids unchanged');
});

t.test('a sink removed from the config with records still queued is reported at start', async (t) => {
  const hook = await receiver(t);
  await hook.down();
  const state = t.testdir();
  const first = createAlerter(config({ webhooks: [webhook(hook.url)] }), state, logCapture().log, CONTEXT, { backoff: FAST });
  first.raise({ check: 'daemon.docker-back', severity: 'low', message: 'm' });
  first.close();
  const { log, lines } = logCapture();
  createAlerter(config({}), state, log, CONTEXT).close();
  const warning = lines.find((l) => l.msg === 'undelivered alerts of a sink no longer configured');
  t.match(warning, { sink: /^webhook-[0-9a-f]{12}$/, queued: 1 });
});

t.test('a full queue drops the oldest and raises an alert saying how many, counting itself', async (t) => {
  const hook = await receiver(t);
  await hook.down();
  const alerter = createAlerter(config({ webhooks: [webhook(hook.url)], queueLimit: 3 }), t.testdir(), logCapture().log, CONTEXT, { backoff: FAST });
  t.teardown(() => alerter.close());
  const ids = Array.from({ length: 5 }, (_, i) => alerter.raise({ check: 'daemon.docker-back', severity: 'low', message: `m${i}` })!.id);
  await alerter.flush(100); // reports the drops now instead of at the next second
  await hook.up();
  await alerter.flush(10_000);
  const got = dataOf(hook);
  t.same(got.slice(0, 2).map((a) => a.id), ids.slice(3), 'the newest survive');
  t.same([got[2]!.check, got[2]!.action, got[2]!.details], ['daemon.alerts-dropped', 'dropped', { sink: got[2]!.details.sink, dropped: 3, droppedTotal: 3 }]);
  t.match(got[2]!.details.sink, /^webhook-[0-9a-f]{12}$/);
  t.equal(got.length, 3, 'no report about the report');
});

t.test('the secret and the URL never reach the log; a bad signature would be refused', async (t) => {
  const hook = await receiver(t);
  const wrong = await receiver(t, Buffer.from('another key'));
  const { log, text } = logCapture();
  const url = `${hook.url}?token=url-secret-token`;
  const alerter = createAlerter(config({ webhooks: [webhook(url), webhook(wrong.url, { timeoutMs: 500 })] }), t.testdir(), log, CONTEXT, { backoff: FAST });
  t.teardown(() => alerter.close());
  alerter.raise({ check: 'daemon.docker-back', severity: 'low', message: 'm' });
  await hook.until(() => hook.deliveries.size === 1);
  await wrong.until(() => wrong.rejected.length >= 2);
  t.same(wrong.rejected.slice(0, 2), ['bad signature', 'bad signature'], 'the receiver\'s own check can fail');
  const all = text.join('');
  t.match(all, /alert delivery failed; retrying/);
  t.notOk(all.includes(SECRET) || all.includes(SECRET.slice(6)), 'no secret');
  t.notOk(all.includes('url-secret-token') || all.includes(String(new URL(hook.url).port)), 'no URL');
});

t.test('unsigned formats for receivers that do not verify; an unreadable secret file names the sink only', async (t) => {
  const hook = await receiver(t, null);
  const alerter = createAlerter(config({ webhooks: [webhook(hook.url, { secret: undefined, format: 'slack' })] }), t.testdir(), logCapture().log, CONTEXT, { backoff: FAST });
  t.teardown(() => alerter.close());
  alerter.raise({ check: 'daemon.docker-back', severity: 'low', message: 'hello' });
  await alerter.flush(5000);
  t.match(dataOfSlack(hook)[0], /hello/);
  t.throws(() => createAlerter(config({ webhooks: [webhook(hook.url, { secret: undefined, secretFile: '/nonexistent/secret' })] }), t.testdir(), logCapture().log, CONTEXT), {
    name: 'AlertSinkUnusable',
    message: /^webhook-[0-9a-f]{12}: cannot read secretFile \/nonexistent\/secret: ENOENT$/,
  });
});
