import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { quote } from '../quote.js';
import { decodeYamlBytes, parseYamlSource, reportedErrors, type YamlSource } from '../yaml-source.js';
import type { PolicyError, PolicyResult } from './result.js';
import { isMissingKey, validatePolicyDocument } from './schema.js';

/** Validates policy text (untrusted) into the typed `Policy`, or every error found, in file order. */
export function parsePolicy(text: string, file: string): PolicyResult {
  const source = parseYamlSource(text, file);
  if (source.errors.length > 0) return failed(source.errors.map((error) => ({ ...error, path: '' })));
  if (source.value === null) {
    return failed([{ ...source.locate([], 'value'), path: '', message: 'the document is empty; expected a mapping with at least "version: 1"' }]);
  }
  const result = validatePolicyDocument(source.value);
  if (!result.success) return failed(result.error.issues.flatMap((issue) => locateIssue(issue, source)));
  return { ok: true, policy: { ...result.data, hash: createHash('sha256').update(text).digest('hex'), file } };
}

/** Reads and validates a policy file; an unreadable file is an error like any other, never a throw. */
export function loadPolicyFile(path: string): PolicyResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    return failed([{ file: path, line: 0, column: 0, path: '', message: `cannot read the policy: ${(error as Error).message}` }]);
  }
  const decoded = decodeYamlBytes(bytes, path, 'policy');
  if ('error' in decoded) return failed([{ ...decoded.error, path: '' }]);
  return parsePolicy(decoded.text, path);
}

function failed(errors: PolicyError[]): PolicyResult {
  return { ok: false, errors: reportedErrors(errors, (last, message) => ({ ...last, path: '', message })) };
}

/** Puts an issue where an admin looks for it: unknown and invalid keys at the key, missing keys at their mapping. */
function locateIssue(issue: z.core.$ZodIssue, source: YamlSource): PolicyError[] {
  // YAML keys reach zod as strings, never symbols.
  const path = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ ...source.locate([...path, key], 'key'), path: formatPath(path), message: `unknown key ${quote(key)}; ${issue.message}` }));
  }
  const parent = path.slice(0, -1);
  if (issue.code === 'invalid_key') return [{ ...source.locate(path, 'key'), path: formatPath(parent), message: issue.message }];
  if (isMissingKey(issue)) return [{ ...source.locate(path, 'value'), path: formatPath(parent), message: issue.message }];
  return [{ ...source.locate(path, 'value'), path: formatPath(path), message: issue.message }];
}

/** `["ports", "rules", 2, "allow", 0]` → `ports.rules[2].allow[0]`; odd or long keys (label names) quoted. */
function formatPath(path: readonly (string | number)[]): string {
  const text = path
    .map((step, i) => {
      if (typeof step === 'number') return `[${step}]`;
      if (!/^[A-Za-z_][\w-]{0,62}$/.test(step)) return `[${quote(step)}]`;
      return i === 0 ? step : `.${step}`;
    })
    .join('');
  // A deeply nested path is shown by its end, where the problem is.
  return text.length > MAX_PATH_SHOWN ? `…${text.slice(-MAX_PATH_SHOWN)}` : text;
}

const MAX_PATH_SHOWN = 200;
