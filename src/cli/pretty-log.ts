import type { DestinationStream } from 'pino';
import { printable } from './printable.js';

/** pino's numeric levels, as a person reads them. */
const LEVELS: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the line shows in its own place. */
const SHOWN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'container', 'violations', 'ports', 'alert', 'err']);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string => printable(typeof v === 'string' ? v : JSON.stringify(v) ?? String(v));

/**
 * One log record (pino's JSON) as one line for a person at a terminal:
 * `20:00:00.123 INFO  container judged  web (c0ffee123456)  violations: privileged→kill`.
 * Everything a container supplies passes through `printable`, so a name cannot move the cursor
 * or start a line of its own.
 */
export function prettyLine(record: Json): string {
  const time = typeof record.time === 'string' ? record.time.slice(11, 23) : '';
  const level = (LEVELS[record.level as number] ?? String(record.level)).padEnd(5);
  const parts = [`${time} ${level} ${text(record.msg ?? '')}`];
  const container = record.container;
  if (isObject(container)) parts.push(`${text(container.name ?? '')} (${text(String(container.id ?? '').slice(0, 12))})`);
  if (Array.isArray(record.violations) && record.violations.length > 0)
    parts.push(`violations: ${record.violations.map((v: Json) => `${text(v.check)}→${text(v.action)}`).join(', ')}`);
  if (Array.isArray(record.ports) && record.ports.length > 0)
    parts.push(`ports: ${record.ports.map((p: Json) => `${text(p.port)} from ${Array.isArray(p.allow) ? p.allow.map(text).join(' ') || 'nobody' : text(p.allow)}`).join(', ')}`);
  const alert = record.alert;
  if (isObject(alert)) parts.push(`alert ${text(alert.check)} ${text(alert.severity)} ${text(alert.action)}: ${text(alert.message)}`);
  const err = record.err;
  if (isObject(err)) parts.push(`error: ${text(err.message ?? err)}`);
  const rest = Object.entries(record).filter(([k]) => !SHOWN.has(k));
  if (rest.length > 0) parts.push(rest.map(([k, v]) => `${text(k)}=${text(v)}`).join(' '));
  return parts.join('  ');
}

/** A pino destination writing `prettyLine`s to `out`. */
export function prettyDestination(out: NodeJS.WritableStream): DestinationStream {
  return { write: (line: string) => void out.write(`${prettyLine(JSON.parse(line) as Json)}\n`) };
}

/** `--log-format` as given, else pretty on a terminal and JSON otherwise (journald, pipes). */
export function logFormat(flag: string | undefined, isTTY: boolean): 'json' | 'pretty' {
  if (flag === 'json' || flag === 'pretty') return flag;
  if (flag !== undefined) throw new Error(`--log-format must be json or pretty, not ${printable(flag)}`);
  return isTTY ? 'pretty' : 'json';
}
