import type { Severity } from './policy/model.js';

const ORDER: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

/** One step less urgent than the policy's severity, for what could happen rather than what is; `low` stays `low`. */
export function oneLower(severity: Severity): Severity {
  return ORDER[Math.max(0, ORDER.indexOf(severity) - 1)]!;
}
