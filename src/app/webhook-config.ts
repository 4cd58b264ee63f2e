import { statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { z } from 'zod';
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

/**
 * One webhook entry's schema: the one definition of what `alerts.webhooks` may hold (convict
 * validates no list entries). Defaults are filled in; every message names what was expected.
 */
const WEBHOOK = z
  .strictObject({
    url: z.string({ error: 'must be an http:// or https:// URL' }).superRefine((text, ctx) => {
      const url = URL.canParse(text) ? new URL(text) : null;
      if (!url || !['http:', 'https:'].includes(url.protocol)) ctx.addIssue({ code: 'custom', message: 'must be an http:// or https:// URL' });
      else if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials; use secret or secretFile' });
    }),
    secret: z.string({ error: 'must be a non-empty string' }).min(1, { error: 'must be a non-empty string' }).optional(),
    secretFile: z
      .string({ error: 'must be an absolute path' })
      .superRefine((file, ctx) => {
        const mode = isAbsolute(file) ? exposedMode(file) : null;
        if (!isAbsolute(file)) ctx.addIssue({ code: 'custom', message: 'must be an absolute path' });
        else if (mode !== null) ctx.addIssue({ code: 'custom', message: `refused: the file is open to group or others (mode ${mode}); a signing secret must be readable by its owner only (chmod 600)` });
      })
      .optional(),
    format: z.enum(WEBHOOK_FORMATS, { error: `must be one of ${WEBHOOK_FORMATS.join(', ')}` }).default('standard'),
    minSeverity: z.enum(ALERT_SEVERITIES, { error: `must be one of ${ALERT_SEVERITIES.join(', ')}` }).default('info'),
    timeoutMs: z.number({ error: 'must be a whole number of at least 1' }).int({ error: 'must be a whole number of at least 1' }).min(1, { error: 'must be a whole number of at least 1' }).max(Number.MAX_SAFE_INTEGER).default(5_000),
  }, { error: 'must be a mapping with url and secret or secretFile' });

/**
 * The rule across keys, judged on the entry as written (zod skips an object's own refinements once a
 * field has failed, and this one must be said whatever else is wrong).
 */
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
    const result = WEBHOOK.safeParse(entry);
    const found = [...(result.success ? [] : result.error.issues.flatMap((issue) => problemsOf(index, issue))), ...secretProblems(index, entry)];
    if (found.length > 0) problems.push(...found);
    else if (result.success) webhooks.push(result.data);
  });
  return problems.length > 0 ? { problems } : { webhooks };
}

function problemsOf(index: number, issue: z.core.$ZodIssue): WebhookProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ index, key, at: 'key', message: `unknown key; known keys: ${KEYS.join(', ')}` }));
  }
  const key = issue.path.length > 0 ? String(issue.path[0]) : null;
  // A refusal is about the setting itself: pointed at its key, like an unknown one.
  return [{ index, key, at: key === null || issue.message.startsWith('refused') ? 'key' : 'value', message: issue.message }];
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
