import type { Alert, AlertSeverity } from './alert.js';
import { wellFormed } from './alert.js';

export const SYSLOG_FACILITIES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'ntp', 'audit', 'alert', 'clock', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;
export type SyslogFacility = (typeof SYSLOG_FACILITIES)[number];

/** Our severities on syslog's: critical → crit, high → err, medium → warning, low → notice, info → info. */
const SYSLOG_SEVERITY: Record<AlertSeverity, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };

/** RFC 5612's documentation enterprise number; SD-IDs with `@` need one. */
export const SD_ID = 'dockwarden@32473';

export interface SyslogIdentity {
  readonly facility: SyslogFacility;
  readonly appName: string;
  readonly procId: number;
}

export function syslogPri(facility: SyslogFacility, severity: AlertSeverity): number {
  return SYSLOG_FACILITIES.indexOf(facility) * 8 + SYSLOG_SEVERITY[severity];
}

/**
 * RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG`. Header fields are
 * PRINTUSASCII (anything else becomes `_`); SD-PARAM values escape `"`, `\` and `]`, and lose control
 * characters, so no value — a container name, an image reference — can close the element or start a
 * new field or record. MSG is the fixed message text.
 */
export function formatRfc5424(alert: Alert, id: SyslogIdentity): Buffer {
  const params: Array<[string, string]> = [
    ['id', alert.id],
    ['check', alert.check],
    ['severity', alert.severity],
    ['action', alert.action],
    ['mode', alert.mode],
    ['policy', alert.policyHash],
  ];
  if (alert.container) params.push(['container', alert.container.id], ['name', alert.container.name], ['image', alert.container.image]);
  if (Object.keys(alert.details).length > 0) params.push(['details', JSON.stringify(alert.details)]);
  const sd = `[${SD_ID}${params.map(([k, v]) => ` ${k}="${sdValue(v)}"`).join('')}]`;
  const header = [
    `<${syslogPri(id.facility, alert.severity)}>1`,
    alert.time,
    headerField(alert.host, 255),
    headerField(id.appName, 48),
    String(id.procId),
    headerField(alert.check, 32),
  ].join(' ');
  return Buffer.concat([Buffer.from(`${header} ${sd} `, 'utf8'), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(oneLine(alert.message), 'utf8')]);
}

/**
 * For the local socket (`/dev/log`): the traditional `<PRI>TAG[PID]: MSG` that journald and rsyslog's
 * imuxsock parse (journald files RFC 5424 there as an unparsed message). MSG is the message text
 * followed by the record as one line of JSON, which escapes whatever a value contains.
 */
export function formatLocal(alert: Alert, id: SyslogIdentity): Buffer {
  return Buffer.from(`<${syslogPri(id.facility, alert.severity)}>${headerField(id.appName, 48)}[${id.procId}]: ${oneLine(alert.message)} ${JSON.stringify(alert)}`, 'utf8');
}

/** rsyslog's default maxMessageSize: a bigger record is cut by receivers, and over UDP can be refused (EMSGSIZE) forever. */
export const SYSLOG_MAX_BYTES = 8192;

/**
 * `format(alert)`, kept within SYSLOG_MAX_BYTES without cutting through a field: first the details
 * give way (replaced by their size), then overlong container names and images are shortened.
 */
export function withinSyslogLimit(alert: Alert, format: (alert: Alert) => Buffer): Buffer {
  const full = format(alert);
  if (full.length <= SYSLOG_MAX_BYTES) return full;
  const slim = { ...alert, details: { truncated: true, detailsBytes: Buffer.byteLength(JSON.stringify(alert.details)) } };
  const withoutDetails = format(slim);
  if (withoutDetails.length <= SYSLOG_MAX_BYTES || !alert.container) return withoutDetails;
  const short = (text: string): string => wellFormed(text.slice(0, 256));
  return format({ ...slim, message: short(alert.message), container: { id: short(alert.container.id), name: short(alert.container.name), image: short(alert.container.image) } });
}

/** RFC 6587 octet counting: `LEN SP MSG`, LEN in bytes. */
export function octetCounted(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `, 'ascii'), message]);
}

function headerField(value: string, max: number): string {
  const printable = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return printable === '' ? '-' : printable;
}

function sdValue(value: string): string {
  return oneLine(value).replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** Control characters (newlines included) would end a record on newline-framed receivers. */
function oneLine(text: string): string {
  return wellFormed(text).replace(/[\u0000-\u001f\u007f]/g, ' ');
}
