import type { Logger } from 'pino';
import type { DockerEngine } from '../adapters/docker/engine.js';
import type { ContainerAction, Violation } from '../domain/decision.js';
import { containerRef, type ContainerFacts } from '../domain/facts.js';
import type { Policy } from '../domain/policy/model.js';
import type { Enforcer, Tracked } from './reconciler.js';

/** A stop or kill done, or failed after every retry (`error` set; the container's next sync tries again). */
export interface ActionOutcome {
  readonly facts: ContainerFacts;
  readonly action: ContainerAction;
  readonly violations: readonly Violation[];
  readonly error: unknown;
}

export interface ActionEnforcerOptions {
  /** Pauses between attempts; one attempt more than there are pauses. */
  readonly retryDelaysMs: readonly number[];
  /** Told of each stop or kill after it is logged (metrics, alerts). */
  readonly onOutcome?: (outcome: ActionOutcome) => void;
}

/**
 * Does the decision's `action` to a running container, through the Docker API, and sets its restart
 * policy to `no`, so neither `--restart always` nor a dockerd restart brings it back. In audit mode the
 * decision has no action; what enforce mode would have done is logged once per change. Idempotent: a
 * container that is not running is left alone.
 */
export function actionEnforcer(docker: Pick<DockerEngine, 'disableRestart' | 'stop' | 'kill'>, log: Logger, options: ActionEnforcerOptions): Enforcer {
  const auditLogged = new Map<string, string>();
  return {
    name: 'action',
    async apply({ facts, decision }: Tracked, policy: Policy) {
      const { action, actionInEnforce } = decision;
      if (actionInEnforce === null || !facts.state.running) return;
      const violations = decision.violations.filter((v) => v.action !== 'alert');
      const record = { container: containerRef(facts), action: action ?? actionInEnforce, violations: violations.map(brief) };
      if (action === null) {
        const key = JSON.stringify(record);
        if (auditLogged.get(facts.id) !== key) log.warn(record, 'audit mode: container left running');
        auditLogged.set(facts.id, key);
        return;
      }
      // Side by side, so the restart-policy call adds nothing to the time the container gets to run:
      // dockerd does not restart a container the API stopped or killed, and the policy `no` keeps
      // it down across a dockerd restart too.
      const [restart, ended] = await Promise.allSettled([
        withRetries(() => docker.disableRestart(facts.id), options.retryDelaysMs),
        withRetries(() => (action === 'kill' ? docker.kill(facts.id) : docker.stop(facts.id, policy.containers.stopGraceSeconds)), options.retryDelaysMs),
      ]);
      if (restart.status === 'rejected') log.error({ ...record, err: restart.reason }, 'cannot set the restart policy to no');
      if (ended.status === 'rejected') {
        log.error({ ...record, err: ended.reason }, action === 'kill' ? 'kill failed; retried at the next sync' : 'stop failed; retried at the next sync');
        options.onOutcome?.({ facts, action, violations, error: ended.reason });
        return;
      }
      log.warn(record, action === 'kill' ? 'container killed' : 'container stopped');
      options.onOutcome?.({ facts, action, violations, error: null });
    },
    async forget(id: string) {
      auditLogged.delete(id);
    },
  };
}

const brief = (v: Violation) => ({ check: v.check, severity: v.severity, message: v.message });

async function withRetries(attempt: () => Promise<void>, delaysMs: readonly number[]): Promise<void> {
  for (const delay of delaysMs) {
    try {
      return await attempt();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
  return attempt();
}
