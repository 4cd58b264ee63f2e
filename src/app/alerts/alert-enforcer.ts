import { containerRef } from '../../domain/facts.js';
import type { Enforcer, Tracked } from '../reconciler.js';
import type { AlertInput } from './alerter.js';

/**
 * The one route from violations to alerts (every check's, refused relabels included). One alert per new violation of a container: not again on every reconcile while the same violation
 * persists; again when it goes away and comes back, when the container is forgotten and returns, or
 * when what the daemon does about it changes (audit → enforce). Severity alone changing is not news.
 */
export function alertEnforcer(raise: (input: AlertInput) => unknown): Enforcer {
  const seen = new Map<string, Set<string>>();
  return {
    name: 'alerts',
    async apply({ facts, decision }: Tracked) {
      const before = seen.get(facts.id) ?? new Set<string>();
      const now = new Set<string>();
      for (const violation of decision.violations) {
        const action = violation.effective;
        const key = JSON.stringify([violation.check, violation.message, violation.details, action]);
        now.add(key);
        if (before.has(key)) continue;
        raise({
          check: violation.check,
          severity: violation.severity,
          action,
          message: violation.message,
          container: containerRef(facts),
          details: violation.details,
        });
      }
      seen.set(facts.id, now);
    },
    async forget(id: string) {
      seen.delete(id);
    },
  };
}
