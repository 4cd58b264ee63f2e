import type { Logger } from 'pino';
import type { FirewallBackend } from '../adapters/firewall/backend.js';
import {
  IncrementalPlan, PendingChanges, isFirewallInputError, planContainer,
  type ContainerElements, type FirewallPlan, type PlanOptions,
} from '../domain/firewall/plan.js';
import type { Enforcer, Tracked } from './reconciler.js';

/** Valid Linux interface names; anything else from Docker is reported and left out of the ruleset. */
const INTERFACE_NAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const RETRY_DELAYS_MS = [100, 500, 2_000];

/**
 * Keeps the kernel's ruleset equal to the plan of every running container. A container change costs
 * only its own elements (IncrementalPlan), whatever the number of containers. Changes are batched:
 * while one transaction runs, further changes accumulate and go out together in the next, so a burst
 * of events (start-up, reconcile) costs a few transactions, not one per container. A transaction is
 * an element update when only containers changed, an atomic replace otherwise, and always a replace
 * after a failure, so the kernel never keeps a half-applied state. Failed applies are retried, then
 * reported. Drift checks run in the same queue, between transactions, so they compare the kernel
 * with exactly what was applied.
 */
export class FirewallEnforcer implements Enforcer {
  readonly name = 'firewall';
  private readonly desired = new IncrementalPlan();
  private readonly pending = new PendingChanges();
  private options: PlanOptions;
  /** The options of the last replace; null = the kernel's content is unknown, so the next flush replaces. */
  private installedOptions: PlanOptions | null = null;
  private readonly jobs: Array<{ readonly verify: boolean; resolve(drift: string | null): void; reject(error: unknown): void }> = [];
  private running = false;

  constructor(
    private readonly backend: FirewallBackend,
    private readonly log: Logger,
    initial: PlanOptions,
    private readonly onOptionsChanged: (options: PlanOptions) => void = () => {},
    private readonly onDriftRepaired: (drift: string) => void = () => {},
  ) {
    this.options = initial;
  }

  async apply({ facts, decision }: Tracked): Promise<void> {
    let elements: ContainerElements = { containerId: facts.id, claims: [], endpoints: [] };
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
    await this.change(elements);
  }

  async forget(id: string): Promise<void> {
    await this.change({ containerId: id, claims: [], endpoints: [] });
  }

  /** The policy's default and Docker's bridges; a change rewrites the chains, so it is a full replace. */
  async configure(change: Partial<PlanOptions>): Promise<void> {
    const bridges = (change.bridges ?? this.options.bridges).filter((name) => {
      if (INTERFACE_NAME.test(name)) return true;
      this.log.error({ bridge: name }, 'Docker bridge with an unusable interface name left out of the firewall');
      return false;
    });
    const next = { defaultDeny: change.defaultDeny ?? this.options.defaultDeny, bridges: [...new Set(bridges)].sort() };
    if (sameOptions(next, this.options)) return;
    this.options = next;
    this.onOptionsChanged(next);
    await this.enqueue(false);
  }

  /**
   * Boot and start-up: when nothing of ours is installed, put in the empty plan, which already drops
   * DNATed new connections to every container (fail-closed). An existing ruleset stays until the first
   * flush replaces it atomically, so a restart opens nothing.
   */
  async baseline(): Promise<boolean> {
    if (await this.backend.installed()) return false;
    await this.backend.replace(new IncrementalPlan().plan(this.options));
    return true;
  }

  /**
   * Compares the kernel with what we applied; repairs (atomic replace) and says so when they differ.
   * When we do not know what the kernel holds (a ruleset from an earlier run, a failed apply), replaces.
   */
  repairDrift(): Promise<string | null> {
    return this.enqueue(true);
  }

  /** The desired plan as of now (status output, tests). Costs all containers. */
  plan(): FirewallPlan {
    return this.desired.plan(this.options);
  }

  private async change(elements: ContainerElements): Promise<void> {
    const diff = this.desired.set(elements);
    this.pending.record(diff);
    if (!this.pending.empty || this.installedOptions === null) await this.enqueue(false);
  }

  private enqueue(verify: boolean): Promise<string | null> {
    return new Promise((resolve, reject) => {
      this.jobs.push({ verify, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.jobs.length > 0) {
      // One flush serves every waiting change; a verification waits for its own turn.
      const first = this.jobs[0]!;
      const batch = first.verify ? this.jobs.splice(0, 1) : this.jobs.splice(0, countWhile(this.jobs, (j) => !j.verify));
      try {
        await this.flush();
        const drift = first.verify ? await this.verify() : null;
        for (const job of batch) job.resolve(drift);
      } catch (error) {
        for (const job of batch) job.reject(error);
      }
    }
    this.running = false;
  }

  private async verify(): Promise<string | null> {
    const drift = await this.backend.drift(this.desired.plan(this.installedOptions ?? this.options));
    if (!drift) return null;
    this.log.warn({ firewall: { backend: this.backend.name, drift } }, 'firewall drift repaired');
    this.installedOptions = null;
    await this.flush();
    this.onDriftRepaired(drift);
    return drift;
  }

  private async flush(): Promise<void> {
    if (this.installedOptions && sameOptions(this.installedOptions, this.options)) {
      if (this.pending.empty) return;
      const diff = this.pending.take();
      try {
        await this.backend.update(diff, () => this.desired.plan(this.options));
        return;
      } catch (error) {
        this.log.warn({ firewall: { backend: this.backend.name }, err: error }, 'firewall update failed; replacing the whole ruleset');
      }
    }
    this.installedOptions = null;
    for (let attempt = 0; ; attempt++) {
      const options = this.options;
      this.pending.clear(); // the replace installs everything desired up to this moment
      try {
        await this.backend.replace(this.desired.plan(options));
        this.installedOptions = options;
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

const sameOptions = (a: PlanOptions, b: PlanOptions): boolean => a.defaultDeny === b.defaultDeny && a.bridges.join() === b.bridges.join();

function countWhile<T>(items: readonly T[], test: (item: T) => boolean): number {
  const stop = items.findIndex((item) => !test(item));
  return stop < 0 ? items.length : stop;
}
