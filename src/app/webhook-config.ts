import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { ALERT_SEVERITIES, type AlertSeverity } from '../domain/alerts/alert.js';
import { WEBHOOK_FORMATS, type WebhookFormat } from '../domain/alerts/webhook-payload.js';

export interface WebhookConfig {
  readonly url: string;
  /** `whsec_<base64>` or raw; exactly one of secret / secretFile, required for `format: standard`. */
  readonly secret?: string;
  readonly secretFile?: string;
  readonly format: WebhookFormat;
  readonly minSeverity: AlertSeverity;
  readonly timeoutMs: number;
}

/** One problem of one entry: `key` null for the entry as a whole; `at` what of it the location points at. */
export interface WebhookProblem {
  readonly index: number;
  readonly key: string | null;
  readonly at: 'key' | 'value';
  readonly message: string;
}

const KEYS = ['url', 'secret', 'secretFile', 'format', 'minSeverity', 'timeoutMs'] as const;

type Checked<T> = { readonly value: T } | { readonly problem: string; readonly at?: 'key' };

const WHOLE_NUMBER = 'must be a whole number of at least 1';

/**
 * One webhook entry's keys: the one definition of what `alerts.webhooks` may hold (convict validates
 * no list entries), each key's check in the order problems are reported; `undefined` in, the default
 * out. Written out rather than as a zod schema: the config loads on the daemon's own thread, where zod
 * (whichever build: its chunk holds every locale, shared with the policy's validator) would stay for
 * the daemon's life, ~8 MiB of RSS (README "Scale").
 */
const CHECKS: { readonly [K in (typeof KEYS)[number]]-?: (value: unknown) => Checked<WebhookConfig[K]> } = {
  url: (value) => {
    const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : null;
    if (!url || !['http:', 'https:'].includes(url.protocol)) return { problem: 'must be an http:// or https:// URL' };
    return url.username || url.password ? { problem: 'must not carry credentials; use secret or secretFile' } : { value: value as string };
  },
  secret: (value) => (value === undefined || (typeof value === 'string' && value.length > 0) ? { value } : { problem: 'must be a non-empty string' }),
  secretFile: (value) => {
    if (value === undefined) return { value };
    if (typeof value !== 'string' || !isAbsolute(value)) return { problem: 'must be an absolute path' };
    const mode = exposedMode(value);
    // A refusal is about the setting itself: pointed at its key, like an unknown one.
    if (mode !== null) return { problem: `refused: the file is open to group or others (mode ${mode}); a signing secret must be readable by its owner only (chmod 600)`, at: 'key' };
    return { value };
  },
  format: (value) => oneOf(WEBHOOK_FORMATS, value, 'standard'),
  minSeverity: (value) => oneOf(ALERT_SEVERITIES, value, 'info'),
  timeoutMs: (value) => (value === undefined ? { value: 5_000 } : Number.isSafeInteger(value) && (value as number) >= 1 ? { value: value as number } : { problem: WHOLE_NUMBER }),
};

function oneOf<T extends string>(values: readonly T[], value: unknown, fallback: T): Checked<T> {
  if (value === undefined) return { value: fallback };
  return values.includes(value as T) ? { value: value as T } : { problem: `must be one of ${values.join(', ')}` };
}

/** An entry with its defaults, or its problems apart from the rule across keys: each key's, then the unknown keys. */
function checkEntry(index: number, entry: unknown): { readonly webhook: WebhookConfig } | { readonly problems: WebhookProblem[] } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { problems: [{ index, key: null, at: 'key', message: 'must be a mapping with url and secret or secretFile' }] };
  const fields = entry as Record<string, unknown>;
  const webhook: Record<string, unknown> = {};
  const problems: WebhookProblem[] = [];
  for (const key of KEYS) {
    const checked = CHECKS[key](Object.hasOwn(fields, key) ? fields[key] : undefined);
    if ('problem' in checked) problems.push({ index, key, at: checked.at ?? 'value', message: checked.problem });
    else if (checked.value !== undefined) webhook[key] = checked.value;
  }
  for (const key of Object.keys(fields)) {
    if (!(KEYS as readonly string[]).includes(key)) problems.push({ index, key, at: 'key', message: `unknown key; known keys: ${KEYS.join(', ')}` });
  }
  return problems.length > 0 ? { problems } : { webhook: webhook as unknown as WebhookConfig };
}

/** The rule across keys, judged on the entry as written: said whatever else is wrong with it. */
function secretProblems(index: number, entry: unknown): WebhookProblem[] {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return [];
  const has = (key: string) => Object.hasOwn(entry, key);
  if (has('secret') && has('secretFile')) return [{ index, key: 'secretFile', at: 'value', message: 'give secret or secretFile, not both' }];
  const format = (entry as { format?: unknown }).format ?? 'standard';
  if (!has('secret') && !has('secretFile') && format === 'standard') return [{ index, key: null, at: 'key', message: 'needs secret or secretFile: standard webhooks are signed' }];
  return [];
}

/** The entries with their defaults, or every problem of every entry. */
export function parseWebhooks(value: unknown): { readonly webhooks: WebhookConfig[] } | { readonly problems: WebhookProblem[] } {
  if (!Array.isArray(value)) return { problems: [{ index: -1, key: null, at: 'value', message: 'must be a list of webhooks' }] };
  const webhooks: WebhookConfig[] = [];
  const problems: WebhookProblem[] = [];
  value.forEach((entry: unknown, index) => {
    const checked = checkEntry(index, entry);
    const found = [...('problems' in checked ? checked.problems : []), ...secretProblems(index, entry)];
    if (found.length > 0) problems.push(...found);
    else if ('webhook' in checked) webhooks.push(checked.webhook);
  });
  return problems.length > 0 ? { problems } : { webhooks };
}

/** The file's mode in octal when group or others may read or write it; null when it is private or cannot be read (reading it reports that). */
function exposedMode(file: string): string | null {
  try {
    const mode = statSync(file).mode & 0o777;
    return mode & 0o066 ? `0${mode.toString(8).padStart(3, '0')}` : null;
  } catch {
    return null;
  }
}
