import type { Logger } from 'pino';
import type { FirewallBackend } from '../adapters/firewall/backend.js';
import {
  diffElements, isEmpty, isFirewallInputError, planAll, planContainer,
  type ContainerElements, type FirewallPlan, type PlanOptions,
} from '../domain/firewall/plan.js';
import type { Enforcer, Tracked } from './reconciler.js';

/** Valid Linux interface names; anything else from Docker is reported and left out of the ruleset. */
const INTERFACE_NAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const RETRY_DELAYS_MS = [100, 500, 2_000];

/**
 * Keeps the kernel's ruleset equal to the plan of every running container. Changes are batched:
 * while one flush runs, further changes wait and go out together in the next, so a burst of events
 * (start-up, reconcile) costs a few transactions, not one per container. A flush is a small element
 * update when only containers changed, an atomic replace otherwise, and always a replace after a
 * failure, so the kernel never keeps a half-applied state. Failed applies are retried, then reported.
 */
export class FirewallEnforcer implements Enforcer {
  readonly name = 'firewall';
  private readonly containers = new Map<string, ContainerElements>();
  private options: PlanOptions;
  /** What the kernel holds, as far as we know; null = unknown, so the next flush replaces. */
  private applied: FirewallPlan | null = null;
  private waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  private flushing = false;

  constructor(
    private readonly backend: FirewallBackend,
    private readonly log: Logger,
    initial: PlanOptions,
    private readonly onOptionsChanged: (options: PlanOptions) => void = () => {},
  ) {
    this.options = initial;
  }

  async apply({ facts, decision }: Tracked): Promise<void> {
    let elements: ContainerElements | null = null;
    try {
      elements = planContainer(facts, decision);
    } catch (error) {
      if (!isFirewallInputError(error)) throw error;
      // Its ports stay closed by the baseline: nothing of it reaches the ruleset.
      this.log.error({ container: { id: facts.id, name: facts.name }, err: error }, 'container left out of the firewall');
    }
    for (const verdict of decision.ports) {
      if (verdict.labelError) this.log.warn({ container: { id: facts.id, name: facts.name }, reason: verdict.labelError }, 'port closed: narrowing label unreadable');
    }
    if (elements && elements.claims.length + elements.endpoints.length > 0) this.containers.set(facts.id, elements);
    else if (!this.containers.delete(facts.id)) return;
    await this.flush();
  }

  async forget(id: string): Promise<void> {
    if (this.containers.delete(id)) await this.flush();
  }

  /** The policy's default and Docker's bridges; a change rewrites the chains, so it is a full replace. */
  async configure(change: Partial<PlanOptions>): Promise<void> {
    const bridges = (change.bridges ?? this.options.bridges).filter((name) => {
      if (INTERFACE_NAME.test(name)) return true;
      this.log.error({ bridge: name }, 'Docker bridge with an unusable interface name left out of the firewall');
      return false;
    });
    const next = { defaultDeny: change.defaultDeny ?? this.options.defaultDeny, bridges: [...new Set(bridges)].sort() };
    if (next.defaultDeny === this.options.defaultDeny && next.bridges.join() === this.options.bridges.join()) return;
    this.options = next;
    this.onOptionsChanged(next);
    await this.flush();
  }

  /**
   * Boot and start-up: when nothing of ours is installed, put in the empty plan, which already drops
   * DNATed new connections to every container (fail-closed). An existing ruleset stays until the first
   * flush replaces it atomically, so a restart opens nothing.
   */
  async baseline(): Promise<boolean> {
    if (await this.backend.installed()) return false;
    await this.backend.replace(planAll([], this.options));
    return true;
  }

  /**
   * Compares the kernel with what we applied; repairs (atomic replace) and says so when they differ.
   * When we do not know what the kernel holds (a ruleset from an earlier run, a failed apply), replaces.
   */
  async repairDrift(): Promise<string | null> {
    const expected = this.applied;
    const drift = expected ? await this.backend.drift(expected) : null;
    if (drift) {
      this.log.warn({ firewall: { backend: this.backend.name, drift } }, 'firewall drift repaired');
      this.applied = null;
    }
    if (!this.applied) await this.flush();
    return drift;
  }

  /** The plan as of now (for status output and tests). */
  plan(): FirewallPlan {
    return planAll(this.containers.values(), this.options);
  }

  /** Resolves once a flush that includes every change made so far has been applied. */
  private flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.flushing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.flushing = true;
    while (this.waiters.length > 0) {
      const batch = this.waiters.splice(0);
      try {
        await this.applyPlan(this.plan());
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.flushing = false;
  }

  private async applyPlan(next: FirewallPlan): Promise<void> {
    const before = this.applied;
    if (before && before.defaultDeny === next.defaultDeny && before.bridges.join() === next.bridges.join()) {
      const diff = diffElements(before, next);
      if (isEmpty(diff.add) && isEmpty(diff.delete)) return;
      try {
        await this.backend.update(diff, next);
        this.applied = next;
        return;
      } catch (error) {
        this.log.warn({ firewall: { backend: this.backend.name }, err: error }, 'firewall update failed; replacing the whole ruleset');
      }
    }
    this.applied = null;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.backend.replace(next);
        this.applied = next;
        return;
      } catch (error) {
        const delay = RETRY_DELAYS_MS[attempt];
        if (delay === undefined) throw error;
        this.log.warn({ firewall: { backend: this.backend.name }, err: error, retryInMs: delay }, 'firewall replace failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}
