import type { Logger } from 'pino';
import type { BridgeFilter, BridgeTableState, PortDrops } from '../adapters/nftables/bridge-backend.js';
import { bridgeElements, type SpoofingReason } from '../adapters/nftables/bridge-render.js';
import { nextTurn } from '../adapters/nftables/nft.js';
import { sameKeysApart } from '../domain/same-keys.js';
import type { AlertContainer } from '../domain/alerts/alert.js';
import type { BridgePort } from '../domain/bridge/ports.js';
import { containerRef } from '../domain/facts.js';
import { KernelSync } from './kernel-sync.js';
import type { Enforcer, Tracked } from './reconciler.js';

interface Entry {
  readonly ports: readonly BridgePort[];
  readonly container: AlertContainer;
}

export interface BridgeHooks {
  readonly onDriftRepaired: (drift: string) => void;
  /**
   * Frames from `container`'s ports dropped (`audit`: counted and let through) since its last report,
   * in all and by reason: at most one report per window.
   */
  readonly onSpoofing: (container: AlertContainer, drops: number, reasons: Partial<Record<SpoofingReason, number>>, audit: boolean) => void;
  /** `container`'s ports could not be found or filtered: it runs unfiltered until a later sync succeeds. */
  readonly onFilterFailed: (container: AlertContainer, error: string) => void;
}

/**
 * Bridge isolation (README "Bridge isolation"): keeps the kernel's bridge table equal to the ports
 * each container's decision names. Like FirewallEnforcer: containers are only set elements, changes made
 * while a transaction runs go out together in the next (through the same KernelSync as FirewallEnforcer),
 * a failed update falls back to an atomic replace. A change is one nft run; nothing is read back. A
 * drift check compares the kernel's table with the elements of what was installed (`installed`) and
 * the rules as read after the last replace, reading it outside the queue while events go on: the elements of containers
 * changing meanwhile are left out (`KernelSync.changing`), every other one is compared exactly; a read
 * that overlapped a replace is redone, a drift found is checked again in the queue, where it repairs.
 */
export class BridgeEnforcer implements Enforcer {
  readonly name = 'bridge';
  private readonly desired = new Map<string, Entry>();
  /** What the kernel holds, by container, as of the last transaction. */
  private readonly installed = new Map<string, readonly BridgePort[]>();
  private readonly dirty = new Set<string>();
  /**
   * Our rules and set declarations as read after our last replace; null = unknown, so the next flush
   * replaces. The read is awaited by drift checks only (the table is in place once written, and the
   * start-up reconcile waits for the replace): a read that finds nothing makes it unknown again.
   */
  private skeleton: Promise<string | null> | null = null;
  private readonly sync = new KernelSync({
    flush: () => this.flush(),
    readsBesideWrites: () => true,
    readHolds: (changing) => this.readHolds(changing),
    repair: () => this.repair(),
  });
  /** The containers whose elements the update running now changes. */
  private inFlight: readonly string[] = [];
  /**
   * Start-up with a table of an earlier run: it is kept as it is until the start-up reconcile is done
   * (`reconciled`), then replaced, so its ports stay filtered meanwhile. Null until the first flush has looked.
   */
  private adopting: boolean | null = null;
  /** Whether an earlier run's table was there at start-up (`lookForEarlierTable`); null until looked at, or after a look that failed. */
  private earlier: Promise<boolean> | null = null;
  /**
   * Whether the start-up reconcile is done (`reconciled`). Until then, over an earlier run's table,
   * changes are only recorded: they go out together when it is done, not in an nft run per container
   * on a bridge (~50 runs, ~0.9 s of the event loop at 1,000 containers, profile).
   */
  private startupDone = false;
  private lastDrops = new Map<string, PortDrops>();
  private readonly unreported = new Map<string, { drops: number; reasons: Partial<Record<SpoofingReason, number>>; lastReport: number }>();
  /** `mode: audit`: spoofed frames are counted, not dropped. A change replaces the table. */
  private audit = false;
  private auditInstalled: boolean | null = null;

  constructor(
    private readonly filter: BridgeFilter,
    private readonly log: Logger,
    private readonly hooks: BridgeHooks,
    private readonly reportWindowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `mode: audit`: spoofed frames are counted, not dropped. A change replaces an installed table. */
  async configure({ audit }: { readonly audit: boolean }): Promise<void> {
    if (audit === this.audit) return;
    this.audit = audit;
    if (this.auditInstalled !== null) await this.sync.write();
  }

  /**
   * Every container has been judged (the start-up reconcile is done). An earlier run's table, kept as
   * it was until now (its ports stay filtered; a container it did not know, started while the daemon
   * was down, waits for this, as the port firewall keeps its start-up ruleset until then:
   * FirewallEnforcer.reconciled), is replaced in one transaction by the ports of every container judged:
   * none of a container gone meanwhile is left. True when it replaced the table: a drift check right
   * after could only find what someone changed since, as after the firewall's start-up replace. (It
   * was added to, then checked and replaced: four nft runs one after the other, ~0.25 s of the start-up
   * at 1,000 containers.)
   */
  async reconciled(): Promise<boolean> {
    if (this.startupDone) return false;
    this.startupDone = true;
    // Our own table (there was none to keep): written as the containers were judged.
    if (this.skeleton !== null) return false;
    await this.sync.write();
    return true;
  }

  /**
   * Start-up: whether an earlier run's table is there (from the table names), looked at once, before
   * any container is judged. The daemon asks during its set-up, so that the first syncs do not wait for
   * this nft run (each of the first eight was held ~40 ms by it at 1,000 containers); a first flush not
   * preceded by it asks here.
   */
  lookForEarlierTable(): Promise<boolean> {
    const look = (this.earlier ??= this.filter.installed());
    look.catch(() => {
      if (this.earlier === look) this.earlier = null; // looked at again by the next flush
    });
    return look;
  }

  async apply({ facts, decision }: Tracked): Promise<void> {
    const container = containerRef(facts);
    const part = decision.bridge;
    // A lookup that failed: its stale ports go, and the next sync looks again.
    if (part !== null && 'error' in part) this.failed(container, part.error);
    const ports = part !== null && 'ports' in part ? part.ports : [];
    try {
      await this.change(facts.id, { ports, container });
    } catch (error) {
      this.failed(container, error);
    }
  }

  /** A container whose ports could not be found or filtered: never silent (log, then alert and metric through the hook). */
  private failed(container: AlertContainer, error: unknown): void {
    this.log.error({ container: { id: container.id, name: container.name }, err: error }, 'bridge isolation not applied to a container');
    this.hooks.onFilterFailed(container, error instanceof Error ? error.message : String(error));
  }

  async forget(id: string): Promise<void> {
    this.unreported.delete(id);
    await this.change(id, null);
  }

  /**
   * Compares the kernel's table with what we applied; replaces it and says so when they differ. Out of
   * the queue first: the elements of containers with a change not yet applied or being applied when the
   * read begins, or changed until the comparison ends, may be either way and are left out.
   */
  repairDrift(): Promise<string | null> {
    return this.sync.repairDrift();
  }

  /** Our table was deleted: repair at once (`KernelSync.repairNow`), no read beside the queue first. */
  repairNow(): Promise<string | null> {
    return this.sync.repairNow();
  }

  /** A drift read outside the queue: the elements of containers changing meanwhile are left out. */
  private readHolds(changing: Set<string>): Promise<boolean> | null {
    const known = this.skeleton;
    if (known === null) return null;
    for (const element of [...this.dirty, ...this.inFlight].flatMap((id) => this.elementsOf(id))) changing.add(element);
    const expected = this.expected();
    return Promise.all([known, this.filter.read(true)]).then(async ([skeleton, now]) => skeleton !== null && (await holds(now, skeleton, expected, changing)));
  }

  /** In the queue: compares exactly, and replaces the table when it differs. */
  private async repair(): Promise<string | null> {
    const known = await this.skeleton;
    const now = await this.filter.read();
    if (known !== null && (await holds(now, known, this.expected(), new Set()))) return null;
    await this.replace();
    if (known === null) return null; // nothing applied yet in this run: not drift, only unknown
    const drift = now === null ? 'table bridge dockwarden_bridge is missing' : 'the bridge table differs from what dockwarden applied';
    this.log.warn({ bridge: { drift } }, 'bridge isolation drift repaired');
    this.hooks.onDriftRepaired(drift);
    return drift;
  }

  /**
   * Every element the kernel should hold: of what is installed now, as `bridgeElements` writes them
   * (an element two containers share comes twice). Written out as the comparison consumes it, a
   * container at a time, so 10,000 containers' elements are never made in one piece.
   */
  private expected(): Iterable<string> {
    const installed = [...this.installed.values()];
    return (function* () {
      for (const ports of installed) yield* bridgeElements(ports);
    })();
  }

  /** A container's elements as installed and as desired: those a change of it may add or delete. */
  private elementsOf(id: string): string[] {
    return bridgeElements([...(this.installed.get(id) ?? []), ...(this.desired.get(id)?.ports ?? [])]);
  }

  /** Reads the per-port drop counters and reports containers whose count grew, one report per window. */
  checkSpoofing(): Promise<void> {
    return this.sync.serially(async () => {
      const counts = await this.filter.drops();
      const owners = new Map<string, string>();
      for (const [id, entry] of this.desired) for (const port of entry.ports) owners.set(port.ifname, id);
      // A counter below the last reading was re-created (replace): everything on it is new.
      const grown = (now: number, last = 0): number => (now >= last ? now - last : now);
      for (const [ifname, port] of counts) {
        const last = this.lastDrops.get(ifname);
        const id = owners.get(ifname);
        const drops = grown(port.total, last?.total);
        if (drops === 0 || id === undefined) continue;
        const pending = this.unreported.get(id) ?? { drops: 0, reasons: {}, lastReport: -Infinity };
        const reasons = { ...pending.reasons };
        for (const [reason, n] of Object.entries(port.reasons) as Array<[SpoofingReason, number]>) {
          const more = grown(n, last?.reasons[reason]);
          if (more > 0) reasons[reason] = (reasons[reason] ?? 0) + more;
        }
        this.unreported.set(id, { ...pending, drops: pending.drops + drops, reasons });
      }
      this.lastDrops = counts;
      for (const [id, pending] of this.unreported) {
        const entry = this.desired.get(id);
        if (!entry || pending.drops === 0 || this.now() - pending.lastReport < this.reportWindowMs) continue;
        this.hooks.onSpoofing(entry.container, pending.drops, pending.reasons, this.auditInstalled ?? this.audit);
        this.unreported.set(id, { drops: 0, reasons: {}, lastReport: this.now() });
      }
    });
  }

  /** Every port filtered now (tests, status). */
  ports(): BridgePort[] {
    return [...this.desired.values()].flatMap((e) => e.ports);
  }

  private async change(id: string, entry: Entry | null): Promise<void> {
    // What it had and what it will have: a read running now may see either.
    this.sync.changing(() => this.elementsOf(id));
    if (entry && entry.ports.length > 0) this.desired.set(id, entry);
    else this.desired.delete(id);
    this.sync.changing(() => this.elementsOf(id));
    this.dirty.add(id);
    await this.sync.write();
  }

  private async flush(): Promise<void> {
    if (this.auditInstalled !== null && this.auditInstalled !== this.audit) return this.replace();
    if (this.skeleton === null) {
      // An earlier run's table is kept until the start-up reconcile is done (changes are only recorded meanwhile).
      if (!this.startupDone && (this.adopting ??= await this.lookForEarlierTable())) return;
      return this.replace();
    }
    const ids = [...this.dirty].filter((id) => key(this.installed.get(id)) !== key(this.desired.get(id)?.ports));
    this.dirty.clear();
    if (ids.length === 0) return;
    const remove = ids.flatMap((id) => this.installed.get(id) ?? []);
    // A veth name freed by one container can come back on another: keep what the others still need.
    const freed = new Set(remove.map((p) => p.ifname));
    const keep = [...this.desired].filter(([id]) => !ids.includes(id)).flatMap(([, e]) => e.ports.filter((p) => freed.has(p.ifname)));
    const add = [...ids.flatMap((id) => this.desired.get(id)?.ports ?? []), ...keep];
    try {
      this.inFlight = ids;
      await this.filter.update(remove, add);
      for (const id of ids) this.record(id);
    } catch (error) {
      this.log.warn({ err: error }, 'bridge table update failed; replacing the whole table');
      await this.replace();
    } finally {
      this.inFlight = [];
    }
  }

  private async replace(): Promise<void> {
    this.adopting = false;
    this.skeleton = null;
    this.dirty.clear();
    await this.sync.replacing(() => this.filter.replace(this.ports(), this.audit));
    this.auditInstalled = this.audit;
    this.installed.clear();
    for (const id of this.desired.keys()) this.record(id);
    // Begun at once, as the port firewall's (backend.ts): an edit before the read would pass for ours.
    const read: Promise<string | null> = this.filter.skeleton().catch(() => null);
    this.skeleton = read;
    void read.then((skeleton) => {
      if (skeleton === null && this.skeleton === read) this.skeleton = null;
    });
  }

  private record(id: string): void {
    const ports = this.desired.get(id)?.ports;
    if (ports) this.installed.set(id, ports);
    else this.installed.delete(id);
  }
}

const key = (ports: readonly BridgePort[] | undefined): string => JSON.stringify(ports ?? []);

/** Whether the kernel's table has our rules (`skeleton`) and the `expected` elements, exactly apart from the `changing` ones. */
async function holds(now: BridgeTableState | null, skeleton: string, expected: Iterable<string>, changing: ReadonlySet<string>): Promise<boolean> {
  return now !== null && now.skeleton === skeleton && sameKeysApart(now.elements, expected, changing, nextTurn);
}
