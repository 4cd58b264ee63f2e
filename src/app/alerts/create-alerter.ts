import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { postWebhook } from '../../adapters/webhook.js';
import { createSyslogTransport } from '../../adapters/syslog/transport.js';
import type { AlertContext } from '../../domain/alerts/alert.js';
import { formatLocal, formatRfc5424, withinSyslogLimit, type SyslogIdentity } from '../../domain/alerts/syslog-format.js';
import { parseSyslogTarget } from '../../domain/alerts/syslog-target.js';
import { webhookHeaders, webhookSecretKey } from '../../domain/alerts/webhook-signature.js';
import { webhookBody } from '../../domain/alerts/webhook-payload.js';
import type { AlertsConfig, WebhookConfig } from '../config.js';
import { Alerter } from './alerter.js';
import { DiskQueue } from './disk-queue.js';
import { DEFAULT_BACKOFF, QueuedSink, type Backoff, type SinkTransport } from './queued-sink.js';

/** A webhook's secret file could not be read; names the sink, never the secret. */
export class AlertSinkUnusable extends Error {
  override readonly name = 'AlertSinkUnusable';
}

/**
 * The alerter of `config.alerts`, each sink with its queue in `stateDir/alerts/<sink>/`. A webhook
 * sink is named by a hash of its URL (URLs can be secrets themselves: Slack's are), so reordering the
 * list keeps each queue with its endpoint, and logs never show the URL.
 */
export function createAlerter(
  config: AlertsConfig,
  stateDir: string,
  log: Logger,
  context: () => AlertContext,
  { backoff = DEFAULT_BACKOFF, now }: { backoff?: Backoff; now?: () => number } = {},
): Alerter {
  const sinks: QueuedSink[] = [];
  const queue = (name: string): DiskQueue => new DiskQueue(join(stateDir, 'alerts', name), config.queueLimit);
  const { syslog } = config;
  if (syslog.target !== '') {
    const target = parseSyslogTarget(syslog.target);
    if ('error' in target) throw new AlertSinkUnusable(`alerts.syslog.target: ${target.error}`);
    const transport = createSyslogTransport(target, syslog.timeoutMs);
    const identity: SyslogIdentity = { facility: syslog.facility, appName: syslog.appName, procId: process.pid };
    const format = target.transport === 'unix' ? formatLocal : formatRfc5424;
    const deliver: SinkTransport = { deliver: (alert) => transport.send(withinSyslogLimit(alert, (a) => format(a, identity))), close: () => transport.close() };
    sinks.push(new QueuedSink('syslog', syslog.minSeverity, queue('syslog'), deliver, log, backoff));
  }
  for (const webhook of config.webhooks) {
    const name = `webhook-${createHash('sha256').update(webhook.url).digest('hex').slice(0, 12)}`;
    sinks.push(new QueuedSink(name, webhook.minSeverity, queue(name), webhookTransport(webhook, name), log, backoff));
  }
  for (const sink of sinks) log.info({ sink: sink.name, queued: sink.queue.size, minSeverity: sink.minSeverity }, 'alert sink ready');
  warnOrphanedQueues(join(stateDir, 'alerts'), new Set(sinks.map((s) => s.name)), log);
  return new Alerter({ log, sinks, context, dedupeWindowMs: config.dedupeWindowSeconds * 1000, now });
}

function webhookTransport(webhook: WebhookConfig, name: string): SinkTransport {
  const key = secretKey(webhook, name);
  return {
    deliver(alert) {
      const body = webhookBody(alert, webhook.format);
      const headers = key ? webhookHeaders(key, alert.id, Math.floor(Date.now() / 1000), body) : { 'webhook-id': alert.id };
      return postWebhook(webhook.url, body, headers, webhook.timeoutMs);
    },
    close() {},
  };
}

function secretKey(webhook: WebhookConfig, name: string): Buffer | null {
  if (webhook.secret !== undefined) return webhookSecretKey(webhook.secret);
  if (webhook.secretFile === undefined) return null;
  try {
    return webhookSecretKey(readFileSync(webhook.secretFile, 'utf8').trim());
  } catch (error) {
    throw new AlertSinkUnusable(`${name}: cannot read secretFile ${webhook.secretFile}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** A sink taken out of the config leaves its undelivered records behind: say so rather than sit on them silently. */
function warnOrphanedQueues(dir: string, configured: ReadonlySet<string>, log: Logger): void {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (configured.has(name)) continue;
    const queued = readdirSync(join(dir, name)).filter((f) => f.endsWith('.json')).length;
    if (queued > 0) log.warn({ sink: name, queued, dir: join(dir, name) }, 'undelivered alerts of a sink no longer configured');
  }
}
