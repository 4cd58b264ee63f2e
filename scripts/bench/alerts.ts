/**
 * alerts (issue #7): alerts per second through each sink, and the latency a violation adds on its way
 * to a webhook, each against a floor measured in the same run:
 *   - raise: `Alerter.raise` (record + durable enqueue: temp file, fsync, rename, directory fsync)
 *     against the bare durable write of the same bytes (write + fsync of one file per record);
 *   - webhook: raise → received by a loopback HTTP server that verifies every signature, against
 *     sequential signed POSTs of the same bodies by the bench itself;
 *   - syslog UDP / TCP / unix datagram: raise → received by a loopback receiver, against sending the
 *     same formatted records over the same kind of socket directly;
 *   - latency: the alert enforcer applying a new violation → the webhook request read by the server,
 *     against one direct signed POST (call → request read), samples interleaved.
 * All in this process, on the code the daemon runs (createAlerter, alertEnforcer); the state dir is on
 * the same filesystem the daemon's would be. It touches nothing shared (no table, no dockerd, no
 * client range), so it needs neither the bench lock nor the preflight of lib.ts.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { fork } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { alertEnforcer } from '../../src/app/alerts/alert-enforcer.js';
import { createAlerter } from '../../src/app/alerts/create-alerter.js';
import type { AlertsConfig } from '../../src/app/config.js';
import { makeAlert, type AlertContext } from '../../src/domain/alerts/alert.js';
import { formatLocal, formatRfc5424, octetCounted } from '../../src/domain/alerts/syslog-format.js';
import { webhookBody } from '../../src/domain/alerts/webhook-payload.js';
import { webhookHeaders } from '../../src/domain/alerts/webhook-signature.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { decisionOf } from '../../test/helpers/decision.js';
import { makeFacts } from '../../test/helpers/facts.js';
import { WebhookReceiver } from '../../test/helpers/webhook-receiver.js';
import { fmtStats, ms, now, printJson, ratio, say, sleep, stats } from './lib.js';

const N = Number(process.env.DW_BENCH_ALERTS ?? 2000);
const SAMPLES = Number(process.env.DW_BENCH_ALERT_SAMPLES ?? 200);
const KEY = Buffer.from('bench webhook key');
const SECRET = `whsec_${KEY.toString('base64')}`;
const CONTEXT: AlertContext = { host: 'bench', mode: 'enforce', policyHash: 'f'.repeat(64) };
const log = pino({ level: 'silent' });
const dirs: string[] = [];
const scratch = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-bench-alerts-'));
  dirs.push(dir);
  return dir;
};
const baseConfig = (over: Partial<AlertsConfig>): AlertsConfig => ({
  syslog: { target: '', facility: 'daemon', appName: 'dockwarden', minSeverity: 'info', timeoutMs: 5000 },
  webhooks: [],
  dedupeWindowSeconds: 0,
  queueLimit: N * 2,
  ...over,
});
const input = (i: number) => ({ check: 'privileged' as const, severity: 'high' as const, action: 'kill' as const, message: 'container runs privileged', container: { id: `c${i}`, name: `web-${i}`, image: 'nginx:1.27' }, details: { i } });
const perSecond = (count: number, elapsedMs: number): number => Math.round((count / elapsedMs) * 1000);

async function until(test: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!test()) {
    if (now() > deadline) return false;
    await sleep(1);
  }
  return true;
}

async function webhookPhase(hook: WebhookReceiver) {
  // Floor: the same bodies, signed, POSTed one after another by the bench.
  const records = Array.from({ length: N }, (_, i) => makeAlert(input(i), CONTEXT, new Date(), new Uint8Array(10).map(() => Math.random() * 256)));
  const floorStart = now();
  for (const alert of records) {
    const body = webhookBody(alert, 'standard');
    const headers = webhookHeaders(KEY, alert.id, Math.floor(Date.now() / 1000), body);
    const res = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    await res.arrayBuffer();
  }
  const floorMs = now() - floorStart;
  hook.deliveries.clear();

  // Durable write floor: the bytes of each record, one file each, written and fsynced.
  const writeDir = scratch();
  const writeStart = now();
  records.forEach((alert, i) => {
    const fd = openSync(join(writeDir, `${i}.json`), 'w');
    writeFileSync(fd, JSON.stringify(alert));
    fsyncSync(fd);
    closeSync(fd);
  });
  const writeMs = now() - writeStart;

  const alerter = createAlerter(baseConfig({ webhooks: [{ url: hook.url, secret: SECRET, format: 'standard', minSeverity: 'info', timeoutMs: 5000 }] }), scratch(), log, () => CONTEXT);
  const start = now();
  for (let i = 0; i < N; i++) alerter.raise(input(i));
  const raiseMs = now() - start;
  const arrived = await until(() => hook.deliveries.size >= N, 120_000);
  const totalMs = now() - start;
  alerter.close();
  if (!arrived || hook.rejected.length > 0) throw new Error(`webhook: ${hook.deliveries.size}/${N} arrived, ${hook.rejected.length} rejected`);
  hook.deliveries.clear();
  return { raiseMs, writeMs, totalMs, floorMs };
}

async function syslogPhase(kind: 'udp' | 'tcp' | 'unix') {
  const worker = fork(join(import.meta.dirname, 'alerts-receiver.ts'), [kind], { execArgv: process.execArgv });
  let count = 0;
  let lastSeenAt = 0; // when the receiver last reported a new record: the end of a run that lost some
  const target = await new Promise<string>((resolve, reject) => {
    worker.on('message', (m: { target?: string; count?: number }) => {
      if (m.target) resolve(m.target);
      else if (m.count !== undefined) (count = m.count), (lastSeenAt = now());
    });
    worker.once('error', reject);
  });
  try {
    const identity = { facility: 'daemon' as const, appName: 'dockwarden', procId: process.pid };
    const records = Array.from({ length: N }, (_, i) => makeAlert(input(i), CONTEXT, new Date(), new Uint8Array(10)));
    const formatted = records.map((a) => (kind === 'unix' ? formatLocal(a, identity) : formatRfc5424(a, identity)));

    // Floor: the same records straight onto the same kind of socket, each send awaited.
    const floorStart = now();
    await directSend(kind, target, formatted);
    const floorArrived = await until(() => count >= N, kind === 'udp' ? 2_000 : 30_000);
    const floorMs = lastSeenAt - floorStart;
    const floorReceived = count;
    worker.send('reset');
    await until(() => count === 0, 5_000);

    const alerter = createAlerter(baseConfig({ syslog: { target, facility: 'daemon', appName: 'dockwarden', minSeverity: 'info', timeoutMs: 5000 } }), scratch(), log, () => CONTEXT);
    const start = now();
    for (let i = 0; i < N; i++) alerter.raise(input(i));
    const arrived = await until(() => count >= N, kind === 'udp' ? 10_000 : 60_000);
    const totalMs = lastSeenAt - start;
    alerter.close();
    return { kind, totalMs, floorMs, received: count, floorReceived, complete: arrived, floorComplete: floorArrived };
  } finally {
    worker.send('close');
    await new Promise((resolve) => worker.once('exit', resolve));
  }
}

async function directSend(kind: 'udp' | 'tcp' | 'unix', target: string, records: readonly Buffer[]): Promise<void> {
  if (kind === 'udp') {
    const [, port] = /:(\d+)$/.exec(target)!;
    const socket = createSocket('udp4');
    for (const r of records) await new Promise<void>((resolve, reject) => socket.send(r, Number(port), '127.0.0.1', (e) => (e ? reject(e) : resolve())));
    socket.close();
  } else if (kind === 'tcp') {
    const [, port] = /:(\d+)$/.exec(target)!;
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    for (const r of records) await new Promise<void>((resolve, reject) => socket.write(octetCounted(r), (e) => (e ? reject(e) : resolve())));
    socket.end();
  } else {
    type Dgram = { send(b: Buffer, o: number, l: number, p: string, cb: (e?: Error) => void): void; close(): void };
    const socket = (createRequire(import.meta.url)('unix-dgram') as { createSocket(t: 'unix_dgram'): Dgram }).createSocket('unix_dgram');
    const path = target.slice('unix:'.length);
    // A full receiver buffer is EAGAIN: any sender waits and sends again.
    const send = (r: Buffer): Promise<void> => new Promise((resolve, reject) => socket.send(r, 0, r.length, path, (e) => (e ? reject(e) : resolve())));
    for (const r of records) {
      for (;;) {
        try {
          await send(r);
          break;
        } catch (error) {
          if (!/-11\b|EAGAIN/.test(String(error))) throw error;
          await sleep(1);
        }
      }
    }
    socket.close();
  }
}

async function latencyPhase(hook: WebhookReceiver) {
  const policy = parsePolicy('version: 1\n', 'bench.yaml');
  if (!policy.ok) throw new Error('bench policy invalid');
  const alerter = createAlerter(baseConfig({ webhooks: [{ url: hook.url, secret: SECRET, format: 'standard', minSeverity: 'info', timeoutMs: 5000 }] }), scratch(), log, () => CONTEXT);
  const enforcer = alertEnforcer((i) => alerter.raise(i));
  const facts = makeFacts();
  const through: number[] = [];
  const direct: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    // Through the enforcer: a violation it has not seen for this container → one alert → the POST.
    const before = new Set(hook.deliveries.keys());
    const t0 = now();
    await enforcer.apply({ facts, decision: decisionOf(facts, { violations: [{ check: 'privileged', severity: 'high', action: 'kill', message: 'container runs privileged', details: { i } }], mode: policy.policy.mode }) }, policy.policy);
    await until(() => hook.deliveries.size > before.size, 10_000);
    const got = [...hook.deliveries.values()].find((d) => !before.has(d.id))!;
    through.push(got.receivedAt - t0);

    // Floor: one signed POST of the same kind of body, straight from here.
    const alert = makeAlert(input(i), CONTEXT, new Date(), new Uint8Array(10).map(() => Math.random() * 256));
    const body = webhookBody(alert, 'standard');
    const t1 = now();
    const res = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json', ...webhookHeaders(KEY, alert.id, Math.floor(Date.now() / 1000), body) }, body });
    await res.arrayBuffer();
    direct.push(hook.deliveries.get(alert.id)!.receivedAt - t1);
  }
  alerter.close();
  return { through: stats(through), direct: stats(direct) };
}

let code = 0;
const hook = await new WebhookReceiver(KEY).up();
try {
  say(`# alerts: N=${N} alerts per sink, ${SAMPLES} latency samples; state dirs under ${tmpdir()}`);
  const w = await webhookPhase(hook);
  say(`raise (record + durable enqueue): ${perSecond(N, w.raiseMs)}/s   floor (write + fsync a file per record): ${perSecond(N, w.writeMs)}/s   ratio ${ratio(w.raiseMs, w.writeMs)}`);
  say(`webhook, raise → received:        ${perSecond(N, w.totalMs)}/s   floor (direct signed POSTs):             ${perSecond(N, w.floorMs)}/s   ratio ${ratio(w.totalMs, w.floorMs)}`);
  const syslog = [];
  for (const kind of ['udp', 'tcp', 'unix'] as const) {
    const s = await syslogPhase(kind);
    syslog.push(s);
    say(`syslog ${kind.padEnd(4)}, raise → received:   ${perSecond(s.received, s.totalMs)}/s   floor (direct sends):                    ${perSecond(s.floorReceived, s.floorMs)}/s   ratio ${ratio(s.totalMs, s.floorMs)}${s.complete && s.floorComplete ? '' : `   received ${s.received}/${N} via the sink, ${s.floorReceived}/${N} direct`}`);
    if (!s.complete || (!s.floorComplete && kind !== 'udp')) code = 1; // only bare UDP may lose records
  }
  const l = await latencyPhase(hook);
  say(`latency violation → webhook received: ${fmtStats(l.through)}`);
  say(`floor: one direct signed POST:        ${fmtStats(l.direct)}`);
  say(`added by dockwarden (p50): ${ms(l.through.p50 - l.direct.p50)}; ratio p50 ${ratio(l.through.p50, l.direct.p50)}, p99 ${ratio(l.through.p99, l.direct.p99)}`);
  printJson('alerts', {
    n: N,
    raisePerSecond: perSecond(N, w.raiseMs), durableWriteFloorPerSecond: perSecond(N, w.writeMs), raiseRatio: ratio(w.raiseMs, w.writeMs),
    webhookPerSecond: perSecond(N, w.totalMs), webhookFloorPerSecond: perSecond(N, w.floorMs), webhookRatio: ratio(w.totalMs, w.floorMs),
    syslog: Object.fromEntries(syslog.map((s) => [s.kind, { perSecond: perSecond(s.received, s.totalMs), floorPerSecond: perSecond(s.floorReceived, s.floorMs), ratio: ratio(s.totalMs, s.floorMs), received: s.received, floorReceived: s.floorReceived }])),
    latencyMs: { p50: l.through.p50, p99: l.through.p99, floorP50: l.direct.p50, floorP99: l.direct.p99, ratioP50: ratio(l.through.p50, l.direct.p50), ratioP99: ratio(l.through.p99, l.direct.p99) },
  });
} catch (error) {
  process.stderr.write(`bench alerts: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  code = 1;
} finally {
  await hook.down();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
