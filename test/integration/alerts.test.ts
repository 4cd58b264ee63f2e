import t, { type Test } from 'tap';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { alertEnforcer } from '../../src/app/alerts/alert-enforcer.js';
import { createAlerter } from '../../src/app/alerts/create-alerter.js';
import type { Alert } from '../../src/domain/alerts/alert.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { DOCKER_SOCKET } from '../helpers/docker.js';
import { spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { decisionOf } from '../helpers/decision.js';
import { makeFacts } from '../helpers/facts.js';
import { parse5424, SyslogReceiver } from '../helpers/syslog-receiver.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const KEY = Buffer.from('integration test webhook key');
const SECRET = `whsec_${KEY.toString('base64')}`;
// Default allow and no rules: the shortest ruleset, so this file disturbs the shared table least.
const POLICY = 'version: 1\nports:\n  default: allow\n';
const BROKEN = 'version: 1\nports:\n  default: maybe\n';
const SD = 'dockwarden@32473';

const alertsConfig = (lines: string[]): string => ['firewall:\n  backend: nftables', 'alerts:', ...lines.map((l) => `  ${l}`)].join('\n');
const webhookEntry = (url: string): string[] => ['webhooks:', `  - { url: "${url}", secret: "${SECRET}" }`];
const isAlert = (check: string) => (l: LogLine) => l.msg === 'alert' && (l.alert as Alert).check === check;
const dataOf = (r: WebhookReceiver): Alert[] => [...r.deliveries.values()].map((d) => (d.json as { data: Alert }).data);

async function receiver(t: Test): Promise<WebhookReceiver> {
  const r = await new WebhookReceiver(KEY).up();
  t.teardown(() => r.down());
  return r;
}

function daemon(t: Test, options: Parameters<typeof spawnDaemon>[0]): DaemonProcess {
  const d = spawnDaemon(options);
  t.teardown(() => d.stop('SIGKILL'));
  return d;
}

/** Writes a broken policy and asks for a reload: the one self-alert a test can cause at will. */
async function rejectReload(d: DaemonProcess, n: number): Promise<Alert> {
  writeFileSync(d.policyFile, `${BROKEN}# ${n}\n`);
  d.child.kill('SIGHUP');
  const line = await d.waitForLog((l) => isAlert('daemon.policy-reload-rejected')(l) && d.logs.filter(isAlert('daemon.policy-reload-rejected')).length === n);
  return line.alert as Alert;
}

t.test('hostile container values reach webhook JSON, TCP syslog and the local socket intact and inert', async (t) => {
  const hook = await receiver(t);
  const syslog = new SyslogReceiver();
  t.teardown(() => syslog.close());
  const tcp = await syslog.tcp();
  const local = new SyslogReceiver();
  t.teardown(() => local.close());
  const base = { facility: 'daemon' as const, appName: 'dockwarden', minSeverity: 'info' as const, timeoutMs: 2000 };
  const config = (target: string) => ({ syslog: { ...base, target }, webhooks: [{ url: hook.url, secret: SECRET, format: 'standard' as const, minSeverity: 'info' as const, timeoutMs: 2000 }], dedupeWindowSeconds: 0, queueLimit: 100 });
  const log = pino({ level: 'silent' });
  const policy = parsePolicy('version: 1\nmode: audit\n', 'p.yaml');
  if (!policy.ok) throw new Error('test policy invalid');
  const context = () => ({ host: 'h', mode: policy.policy.mode, policyHash: policy.policy.hash });
  const state = t.testdir({ tcp: {}, local: {} });
  const viaTcp = createAlerter(config(tcp), join(state, 'tcp'), log, context, { backoff: { initialMs: 20, maxMs: 200 } });
  const viaLocal = createAlerter({ ...config(local.unix()), webhooks: [] }, join(state, 'local'), log, context, { backoff: { initialMs: 20, maxMs: 200 } });
  t.teardown(() => (viaTcp.close(), viaLocal.close()));

  // Names Docker itself would refuse, but labels, image references and a future runtime's names carry anything.
  const name = 'x"] [forged@1 id="0"]\n<0>1 2026-01-01T00:00:00Z h forged 1 - - \\]';
  const image = 'img\ud800\udfff\udc00:"}],"severity":"info';
  const facts = makeFacts({ name, image: { reference: image, id: 'sha256:1', repoTags: [], repoDigests: [] } });
  const violation = { check: 'privileged' as const, severity: 'critical' as const, action: 'kill' as const, message: 'container runs privileged', details: { label: '\n]"\\' } };
  for (const alerter of [viaTcp, viaLocal]) {
    await alertEnforcer((input) => alerter.raise(input)).apply({ facts, decision: decisionOf(facts, { violations: [violation], mode: policy.policy.mode }) }, policy.policy);
  }
  await viaTcp.flush(5000);
  await syslog.until(() => syslog.records.length === 1);
  await local.until(() => local.records.length === 1);

  const [sent] = dataOf(hook);
  t.same([sent!.container?.name, sent!.container?.image, sent!.severity, sent!.action, sent!.mode], [name, 'img\ud800\udfff\ufffd:"}],"severity":"info', 'critical', 'alert', 'audit'], 'JSON carries the values whole; audit → alert');
  t.same(sent!.details, violation.details);

  const record = parse5424(syslog.records[0]!);
  t.same([...record.sd.keys()], [SD], 'one SD-ELEMENT: nothing forged');
  t.same([record.appName, record.msgId, record.msg], ['dockwarden', 'privileged', 'container runs privileged']);
  const sd = record.sd.get(SD)!;
  t.same([sd.id, sd.name, sd.image, sd.severity], [sent!.id, name.replace('\n', ' '), sent!.container!.image, 'critical']);

  const line = local.records[0]!.toString('utf8');
  const m = /^<26>dockwarden\[\d+\]: container runs privileged (\{.*\})$/.exec(line);
  t.ok(m, `local socket line: ${JSON.stringify(line.slice(0, 120))}`);
  t.same((JSON.parse(m![1]!) as Alert).container, sent!.container, 'the record as one JSON line');
});

t.test('the daemon alerts about itself: a rejected reload reaches a signed webhook and UDP syslog', async (t) => {
  const hook = await receiver(t);
  const syslog = new SyslogReceiver();
  t.teardown(() => syslog.close());
  const udp = await syslog.udp();
  const d = daemon(t, { policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: alertsConfig([`syslog: { target: "${udp}", facility: local0 }`, ...webhookEntry(hook.url)]) });
  await d.waitForLog((l) => l.msg === 'reconciled');
  const alert = await rejectReload(d, 1);
  t.same([alert.severity, alert.action, alert.mode, alert.container], ['high', 'refused', 'enforce', null]);
  t.match((alert.details.errors as string[])[0], /policy\.yaml:3:12: ports\.default: /);
  await hook.until(() => hook.deliveries.has(alert.id));
  t.same(hook.rejected, [], 'signed correctly');
  t.same(dataOf(hook)[0], alert, 'the webhook gets the record the log shows');
  await syslog.until(() => syslog.records.length >= 1);
  const record = parse5424(syslog.records[0]!);
  t.same([record.pri, record.msgId, record.sd.get(SD)!.id], [16 * 8 + 3, 'daemon.policy-reload-rejected', alert.id], 'local0.err, the check as MSGID');
  t.notOk(d.logs.some((l) => JSON.stringify(l).includes(SECRET.slice(6))), 'the secret is never logged');
  t.equal(await d.stop(), 0);
});

t.test('TCP syslog: the receiver restarts and the daemon reconnects on its own; nothing is lost', async (t) => {
  const syslog = new SyslogReceiver();
  t.teardown(() => syslog.close());
  const tcp = await syslog.tcp();
  const d = daemon(t, { policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: alertsConfig([`syslog: { target: "${tcp}" }`, 'dedupeWindowSeconds: 0']) });
  await d.waitForLog((l) => l.msg === 'reconciled');
  const first = await rejectReload(d, 1);
  await syslog.until(() => syslog.records.length === 1);
  await syslog.tcpDown();
  const during = [await rejectReload(d, 2), await rejectReload(d, 3)];
  await d.waitForLog((l) => l.msg === 'alert delivery failed; retrying' && l.sink === 'syslog');
  await syslog.tcp();
  await syslog.until(() => new Set(syslog.records.map((r) => parse5424(r).sd.get(SD)!.id)).size === 3, 60_000);
  t.same([...new Set(syslog.records.map((r) => parse5424(r).sd.get(SD)!.id))], [first.id, ...during.map((a) => a.id)], 'in order, each id');
  t.same(syslog.errors, [], 'every frame was octet-counted');
  t.equal(await d.stop(), 0);
});

t.test('Docker unreachable: one alert per outage however many retries, and one when it is back', async (t) => {
  const hook = await receiver(t);
  const dir = mkdtempSync(join(tmpdir(), 'dw-sock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'docker.sock');
  const d = daemon(t, { policy: POLICY, dockerSocket: socket, extraConfig: alertsConfig(webhookEntry(hook.url)) });
  await d.waitForLog((l) => l.msg === 'Docker unreachable; rules stay in place' && d.logs.filter((x) => x.msg === l.msg).length >= 3);
  symlinkSync(DOCKER_SOCKET, socket); // Docker "comes back" at the path the daemon keeps trying
  await d.waitForLog((l) => l.msg === 'connected to Docker', 60_000); // its first connection
  await hook.until(() => dataOf(hook).some((a) => a.check === 'daemon.docker-back'));
  t.same(dataOf(hook).map((a) => [a.check, a.severity]), [['daemon.docker-unreachable', 'high'], ['daemon.docker-back', 'info']]);
  t.equal(await d.stop(), 0);
});

t.test('webhook outage across a daemon restart: every alert id arrives once the endpoint is back', async (t) => {
  const hook = await receiver(t);
  await hook.down();
  const state = mkdtempSync(join(tmpdir(), 'dw-alert-state-'));
  t.teardown(() => rmSync(state, { recursive: true, force: true }));
  const extraConfig = alertsConfig([...webhookEntry(hook.url), 'dedupeWindowSeconds: 0']);
  const ids: string[] = [];

  const first = daemon(t, { policy: POLICY, dockerSocket: DOCKER_SOCKET, stateDir: state, extraConfig });
  await first.waitForLog((l) => l.msg === 'reconciled');
  for (let n = 1; n <= 4; n++) ids.push((await rejectReload(first, n)).id);
  await first.waitForLog((l) => l.msg === 'alert delivery failed; retrying');
  t.equal(await first.stop(), 0, 'SIGTERM with undelivered alerts is still a clean exit');
  t.ok(first.logs.some((l) => l.msg === 'alerts not yet delivered stay queued on disk for the next start'));

  const second = daemon(t, { policy: POLICY, dockerSocket: DOCKER_SOCKET, stateDir: state, extraConfig });
  await second.waitForLog((l) => l.msg === 'alert sink ready' && l.queued === 4);
  await second.waitForLog((l) => l.msg === 'reconciled');
  for (let n = 1; n <= 2; n++) ids.push((await rejectReload(second, n)).id);
  second.child.kill('SIGKILL'); // a crash this time: no flush at all
  await second.exited;

  await hook.up(); // the endpoint is back, on the same port
  const third = daemon(t, { policy: POLICY, dockerSocket: DOCKER_SOCKET, stateDir: state, extraConfig });
  await hook.until(() => ids.every((id) => hook.deliveries.has(id)), 60_000);
  t.same(dataOf(hook).map((a) => a.id), ids, 'all six, oldest first, ids as first raised');
  t.same(hook.rejected, []);
  t.equal(await third.stop(), 0);
});
