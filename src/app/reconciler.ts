import type { DockerEngine } from '../adapters/docker/engine.js';
import type { DockerEvent } from '../adapters/docker/events.js';
import type { Decision } from '../domain/decision.js';
import { evaluate } from '../domain/evaluate.js';
import type { ContainerFacts } from '../domain/facts.js';
import type { Policy } from '../domain/policy/model.js';
import type { HostFactsReader } from './host-facts.js';
import type { KeyedQueue } from './keyed-queue.js';

export interface Tracked {
  readonly facts: ContainerFacts;
  readonly decision: Decision;
}

/**
 * Applies its own part of a decision, and reports what it did; it decides nothing. Each enforcer must be idempotent: the same (facts, decision) may be
 * applied any number of times (events, reconciles, reloads all converge on the same call).
 */
export interface Enforcer {
  readonly name: string;
  apply(tracked: Tracked, policy: Policy): Promise<void>;
  /** The container is gone: drop everything held for it. */
  forget(id: string): Promise<void>;
}

/**
 * Events that change nothing dockwarden judges. Healthchecks alone send exec_create, exec_start,
 * exec_die and health_status every interval for every container; exec_start is still looked at
 * (a healthcheck exec is never privileged, so it raises nothing).
 */
const IRRELEVANT_ACTIONS: ReadonlySet<string> = new Set(['exec_create', 'exec_die', 'exec_detach', 'health_status', 'attach', 'resize', 'top', 'export', 'copy', 'archive-path', 'extract-to-dir']);

const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** Containers a reconcile syncs before the whole list has come: about what is judged while dockerd builds a list of 1,000. */
const FIRST_PAGE = 128;

export interface ReconcilerOptions {
  /** The newest containers a reconcile asks for beside the whole list (`reconcile`). */
  readonly firstPage?: number;
}

/**
 * Keeps `tracked` equal to what the engine runs, judged under the current policy. Every path, an
 * event, a reconcile, a reload, ends in `sync(id)`: inspect now, read the host facts, evaluate, apply. Events are only a
 * hint about which container to look at; the inspect is the truth.
 */
export class Reconciler {
  readonly tracked = new Map<string, Tracked>();

  constructor(
    private readonly docker: DockerEngine,
    private readonly queue: KeyedQueue,
    private readonly enforcers: readonly Enforcer[],
    private readonly policy: () => Policy,
    private readonly host: HostFactsReader,
    private readonly options: ReconcilerOptions = {},
  ) {}

  handleEvent(event: DockerEvent): void {
    if (event.type === 'network') {
      // A container joined or left a network: its addresses changed. The attribute is only a hint (the inspect is the truth).
      const id = event.attributes.container;
      if ((event.action === 'connect' || event.action === 'disconnect') && id !== undefined && CONTAINER_ID.test(id)) {
        void this.queue.push(id, 'sync', () => this.sync(id));
      }
      return;
    }
    if (event.type !== 'container' || IRRELEVANT_ACTIONS.has(event.action)) return;
    // dockerd has removed it: an inspect would only say so (404). Its own kind, so that a sync
    // waiting for it is not skipped; container ids are never reused, so nothing can come back under it.
    if (event.action === 'destroy') {
      void this.queue.push(event.id, 'forget', () => this.forget(event.id));
      return;
    }
    // Untrusted: a container label named `execID` replaces dockerd's value; readFacts uses it only
    // when the container has no such label, and only for an exec of this container.
    const execId = event.action === 'exec_start' ? event.attributes.execID : undefined;
    // Its own kind, so a waiting plain sync does not absorb it and lose the exec to look at.
    if (execId !== undefined) void this.queue.push(event.id, `exec ${execId}`, () => this.sync(event.id, execId));
    else void this.queue.push(event.id, 'sync', () => this.sync(event.id));
  }

  /** Syncs one container now (after whatever is queued for it) and gives its judgement; null when it is gone. */
  async syncNow(id: string): Promise<Tracked | null> {
    await this.queue.push(id, 'sync', () => this.sync(id));
    return this.tracked.get(id) ?? null;
  }

  /**
   * Looks at every container the engine has and forgets those it no longer has. The newest
   * (`firstPage`) are asked for beside the whole list and synced as soon as dockerd answers for them,
   * while it still builds the rest (the whole list of 1,000 takes it ~50–80 ms, the first 128 ~15).
   * The whole list decides: a first page that fails costs nothing, and one naming a container gone
   * since costs a sync that finds it gone. Each container is synced once.
   */
  async reconcile(): Promise<void> {
    const work = new Map<string, Promise<void>>();
    const syncEach = (ids: Iterable<string>): void => {
      for (const id of ids) if (!work.has(id)) work.set(id, this.queue.push(id, 'sync', () => this.sync(id)));
    };
    const whole = this.docker.listContainerIds();
    const first = this.docker.listContainerIds(this.options.firstPage ?? FIRST_PAGE).then(syncEach, () => {});
    const ids = await whole;
    await first;
    syncEach(ids);
    const present = new Set(ids);
    syncEach([...this.tracked.keys()].filter((id) => !present.has(id)));
    await Promise.all(work.values());
  }

  private async sync(id: string, execId?: string): Promise<void> {
    const facts = await this.docker.readFacts(id, execId);
    if (!facts) return this.forget(id);
    const policy = this.policy();
    const tracked = { facts, decision: evaluate(policy, facts, await this.host.read(facts, policy)) };
    this.tracked.set(id, tracked);
    await forEachEnforcer(this.enforcers, (e) => e.apply(tracked, policy));
  }

  private async forget(id: string): Promise<void> {
    this.tracked.delete(id);
    this.host.forget(id);
    await forEachEnforcer(this.enforcers, (e) => e.forget(id));
  }
}

/** Runs every enforcer even when one fails (a broken webhook must not stop a kill), then reports all failures. */
async function forEachEnforcer(enforcers: readonly Enforcer[], act: (e: Enforcer) => Promise<void>): Promise<void> {
  const results = await Promise.allSettled(enforcers.map(act));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ enforcer: enforcers[i]!.name, error: r.reason as unknown }] : []));
  if (failures.length > 0) {
    throw new AggregateError(failures.map((f) => f.error), `enforcer(s) failed: ${failures.map((f) => f.enforcer).join(', ')}`);
  }
}
