import type { AlertAction, AlertInput, AlertSeverity } from './alert.js';

/**
 * Every alert that is not a policy check's violation — what the daemon says about itself, and what it
 * observes rather than judges — with its fixed severity and what was done. One place for an admin (and
 * the README's alert table) to read them; every raise goes through `observedAlert`. Violations carry
 * the severity and action the policy gives their check.
 */
export const OBSERVED_ALERTS = {
  ports: { severity: 'medium', action: 'alert', when: 'audit mode: new connections from a source the policy denies reached a published port (enforce mode would have dropped them)' },
  spoofing: { severity: 'high', action: 'alert', when: "frames a container sent with another's MAC or addresses were dropped on its bridge (audit mode: would have been dropped)" },
  'daemon.alerts-dropped': { severity: 'high', action: 'dropped', when: "a sink's queue was full: its oldest alerts were dropped" },
  'daemon.bridge-drift-repaired': { severity: 'high', action: 'repaired', when: 'the bridge table differed from what dockwarden applied, and was replaced' },
  'daemon.bridge-filter-failed': { severity: 'high', action: 'none', when: "a container's bridge ports could not be found or filtered: it runs unfiltered until a later sync succeeds" },
  'daemon.docker-back': { severity: 'info', action: 'none', when: 'the engine answers again after an outage' },
  'daemon.docker-unreachable': { severity: 'high', action: 'none', when: 'the engine stopped answering; rules stay in place' },
  'daemon.firewall-drift-repaired': { severity: 'high', action: 'repaired', when: 'the ruleset differed from what dockwarden applied, and was replaced' },
  'daemon.gate-error': { severity: 'high', action: 'refused', when: 'the gate refused a request it failed to judge (a bad protocol message, an error, its deadline)' },
  'daemon.gate-unjudged': { severity: 'medium', action: 'refused', when: 'the gate refused a request it cannot judge (an empty, oversized or unreadable body; a legacy start)' },
  'daemon.kill-failed': { severity: 'critical', action: 'kill', when: 'a kill failed after its retries; the next sync tries again' },
  'daemon.policy-reload-rejected': { severity: 'high', action: 'refused', when: 'an edited policy is invalid; the last good policy stays in force' },
  'daemon.stop-failed': { severity: 'critical', action: 'stop', when: 'a stop failed after its retries; the next sync tries again' },
} as const satisfies Readonly<Record<string, { readonly severity: AlertSeverity; readonly action: AlertAction; readonly when: string }>>;

export type ObservedAlert = keyof typeof OBSERVED_ALERTS;

/** An alert of the catalogue: its severity and action from there, the rest from the caller. */
export function observedAlert(check: ObservedAlert, message: string, about: Pick<AlertInput, 'container' | 'details'> = {}): AlertInput {
  const { severity, action } = OBSERVED_ALERTS[check];
  return { check, severity, action, message, ...about };
}
