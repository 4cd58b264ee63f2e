import type { Logger } from 'pino';
import type { Decision } from '../domain/decision.js';
import { containerRef, type ContainerFacts } from '../domain/facts.js';
import { portLabel } from '../domain/port-label.js';
import type { Enforcer, Tracked } from './reconciler.js';

/**
 * Logs each container's decision when it first appears and whenever the decision changes, so a
 * periodic reconcile does not repeat the same lines every few minutes.
 */
export function logEnforcer(log: Logger): Enforcer {
  const lastLogged = new Map<string, string>();
  return {
    name: 'log',
    async apply({ facts, decision }: Tracked) {
      const summary = summarise(facts, decision);
      const key = JSON.stringify(summary);
      if (lastLogged.get(facts.id) === key) return;
      lastLogged.set(facts.id, key);
      log.info(summary, 'container judged');
    },
    async forget(id: string) {
      if (lastLogged.delete(id)) log.info({ container: { id } }, 'container gone');
    },
  };
}

function summarise(facts: ContainerFacts, decision: Decision) {
  return {
    container: { ...containerRef(facts), running: facts.state.running },
    // Running, but its init process was gone (or reused) before /proc was read: judged on its configuration alone.
    ...(facts.state.running && facts.capabilities.effective === null && { effectiveCapabilities: 'unread: judged on the configuration' }),
    // More processes than are read: the capability checks did not see those.
    ...(facts.processesUnread > 0 && { processesUnread: facts.processesUnread }),
    ports: decision.ports.map((v) => ({
      port: portLabel(v.port),
      rule: v.rule,
      allow: v.allow === 'any' ? 'any' : v.allow.map((c) => c.text),
    })),
    violations: decision.violations.map((v) => ({ check: v.check, action: v.action, message: v.message })),
  };
}
