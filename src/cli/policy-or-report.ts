import { loadPolicyFile } from '../domain/policy/load.js';
import { formatPolicyError } from '../domain/policy/result.js';
import type { Policy } from '../domain/policy/model.js';

/** The configured policy, or null after printing its located errors (callers exit 2). */
export function policyOrReport(file: string): Policy | null {
  const loaded = loadPolicyFile(file);
  if (loaded.ok) return loaded.policy;
  for (const error of loaded.errors) process.stderr.write(`${formatPolicyError(error)}\n`);
  return null;
}
