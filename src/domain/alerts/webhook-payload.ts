import type { Alert } from './alert.js';

export const WEBHOOK_FORMATS = ['standard', 'slack', 'alertmanager'] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/**
 * The body of one webhook delivery. JSON.stringify escapes whatever a container name holds, so no
 * value can break out of its string. `standard` is the Standard Webhooks envelope around the record.
 */
export function webhookBody(alert: Alert, format: WebhookFormat): string {
  switch (format) {
    case 'standard':
      return JSON.stringify({ type: 'dockwarden.alert', timestamp: alert.time, data: alert });
    case 'slack':
      return JSON.stringify({ text: slackText(alert) });
    case 'alertmanager':
      return JSON.stringify([alertmanagerAlert(alert)]);
  }
}

/** Slack mrkdwn: `&`, `<`, `>` are the only control characters; escaped, a name cannot become a link or a mention. */
function slackText(alert: Alert): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const lines = [`*${esc(alert.severity)}* ${esc(alert.message)} (${esc(alert.check)}, action ${esc(alert.action)}, ${esc(alert.mode)})`];
  if (alert.container) lines.push(`container \`${esc(alert.container.name)}\` ${esc(alert.container.id.slice(0, 12))}, image \`${esc(alert.container.image)}\``);
  lines.push(`host ${esc(alert.host)}, alert ${alert.id}`);
  return lines.join('\n');
}

/** Alertmanager API v2 `POST /api/v2/alerts`: one postable alert; the id is a label, so resends collapse. */
function alertmanagerAlert(alert: Alert) {
  const labels: Record<string, string> = {
    alertname: `dockwarden_${alert.check.replace(/[^A-Za-z0-9_]/g, '_')}`,
    severity: alert.severity,
    check: alert.check,
    host: alert.host,
    alert_id: alert.id,
  };
  if (alert.container) Object.assign(labels, { container_id: alert.container.id, container: alert.container.name, image: alert.container.image });
  return {
    labels,
    annotations: { summary: alert.message, action: alert.action, mode: alert.mode, policy_hash: alert.policyHash, details: JSON.stringify(alert.details) },
    startsAt: alert.time,
  };
}
