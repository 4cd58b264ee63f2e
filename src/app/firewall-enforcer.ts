import type { Logger } from 'pino';
import type { FirewallBackend, WouldDrop } from '../adapters/firewall/backend.js';
import type { AlertContainer } from '../domain/alerts/alert.js';
import { containerRef } from '../domain/facts.js';
import {
  IncrementalPlan, PendingChanges, closedUntilJudged, diffKeys, parseAddress, sameCgroup, withoutGroupsOf,
  type ContainerElements, type ElementDiff, type FirewallPlan, type PlanOptions, type PortClaim, type PortElement, type ServedPort,
} from '../domain/firewall/plan.js';
import type { Enforcer, Tracked } from './reconciler.js';
import type { BaselineRecord } from './firewall-state.js';
import { isInterfaceName } from '../domain/net/interface-name.js';
import { KernelSync } from './kernel-sync.js';

const RETRY_DELAYS_MS = [100, 500, 2_000];
/** The desired plan's entry for ports served before they are judged (not a container id: those are 64 hex digits). */
const UNJUDGED = 'unjudged-served-ports';

/**
 * Keeps the kernel's ruleset equal to the plan of every running container. A container change costs
 * only its own elements (IncrementalPlan), whatever the number of containers. The writes and drift
 * checks are KernelSync's (batched changes, reads outside the queue); this says what to write: an
 * element update when only containers changed, an atomic replace otherwise, and always a replace
 * after a failure, so the kernel never keeps a half-applied state. Failed applies are retried, then
 * reported.
 */
export class FirewallEnforcer implements Enforcer {
  readonly name = 'firewall';
  private readonly desired = new IncrementalPlan();
  private readonly pending = new PendingChanges();
  private options: PlanOptions;
  /** The options of the last replace; null = the kernel's content is unknown, so the next flush replaces. */
  private installedOptions: PlanOptions | null = null;
  private readonly sync = new KernelSync({
    flush: () => this.flush(),
    readsBesideWrites: () => this.backend.readsWhileChanging,
    readHolds: (changing) => this.readHolds(changing),
    repair: async () => {
      await this.flush();
      return this.verify();
    },
  });
  /** The element update being applied now, if any. */
  private inFlight: ElementDiff | null = null;
  /**
   * From `baseline` on, the ruleset found (an earlier run's) or put in (the baseline) stays as it is,
   * nothing applied, until the start-up reconcile has judged every container (`reconciled`). A replace
   * with only the containers judged so far would open again, under `ports.default: allow`, every
   * restricted port not yet judged, and under `deny` the ports the baseline closes by host port.
   */
  private adopting = false;
  /** While adopting: the ports the last run saw, which the baseline closes; an options change saves them too. */
  private bootPorts: readonly PortElement[] = [];
  /** Who each container with published ports is, to name it in audit alerts. */
  private readonly refs = new Map<string, AlertContainer>();
  /** The claims of UNJUDGED in `desired`: ports closed to everyone until a container's judgement claims them. */
  private unjudged: readonly PortClaim[] = [];

  constructor(
    private readonly backend: FirewallBackend,
    private readonly log: Logger,
    initial: PlanOptions,
    /** What the next boot's baseline needs: the options, and every published port before the kernel allows it. */
    private readonly saved: BaselineRecord = { write() {}, publishing() {} },
    private readonly onDriftRepaired: (drift: string) => void = () => {},
    /** Audit mode: connections let through that enforce mode would have dropped, with whose port they reached (null: none known now). */
    private readonly onWouldDrop: (container: AlertContainer | null, drop: WouldDrop) => void = () => {},
    /** The host ports served on the input path now (docker-proxy's), judged or not. */
    private readonly served: () => Promise<readonly ServedPort[]> = async () => [],
  ) {
    this.options = initial;
  }

  async apply({ facts, decision }: Tracked): Promise<void> {
    const container = { id: facts.id, name: facts.name };
    // Its ports stay closed by the baseline: nothing of it reaches the ruleset.
    if (decision.firewall.error !== null) this.log.error({ container, reason: decision.firewall.error }, 'container left out of the firewall');
    const elements = decision.firewall.elements;
    if (elements.claims.length > 0) this.refs.set(facts.id, containerRef(facts));
    else this.refs.delete(facts.id);
    for (const verdict of decision.ports) {
      if (verdict.labelError) this.log.warn({ container, reason: verdict.labelError }, 'port closed: narrowing label unreadable');
    }
    // Judged now: its ports leave UNJUDGED in the same transaction (merged with its claim they would allow nobody).
    await this.change(elements, ...this.closing(withoutGroupsOf(this.unjudged, elements.claims)));
  }

  async forget(id: string): Promise<void> {
    this.refs.delete(id);
    // A port closed until judged whose container went first is no longer served: it goes too.
    const still = this.unjudged.length === 0 ? [] : this.closedUnjudged(await this.servedPorts());
    await this.change({ containerId: id, claims: [], endpoints: [] }, ...this.closing(this.unjudged.filter((c) => still.some((s) => sameClaim(s, c)))));
  }

  /** The policy's default, the bridges and the engine's cgroup; a change rewrites the chains, so it is a full replace. */
  async configure(change: Partial<PlanOptions>): Promise<void> {
    const usable = (list: keyof typeof INTERFACE_LISTS): string[] => {
      const names = (change[list] ?? this.options[list] ?? []).filter((name) => {
        if (isInterfaceName(name)) return true;
        this.log.error({ bridge: name }, `${INTERFACE_LISTS[list]} with an unusable interface name left out of the firewall`);
        return false;
      });
      return [...new Set(names)].sort();
    };
    // `{ engineCgroup: undefined }` says there is none usable now: the key itself says it was given.
    const engineCgroup = 'engineCgroup' in change ? change.engineCgroup : this.options.engineCgroup;
    const next: PlanOptions = {
      defaultDeny: change.defaultDeny ?? this.options.defaultDeny,
      bridges: usable('bridges'),
      routed4: usable('routed4'),
      routed6: usable('routed6'),
      otherBridges: usable('otherBridges'),
      audit: change.audit ?? this.options.audit ?? false,
      ...(engineCgroup ? { engineCgroup } : {}),
    };
    if (sameOptions(next, this.options)) return;
    this.options = next;
    this.log.info({ firewall: next }, 'firewall options changed');
    // While adopting, only some containers are judged: the file keeps the baseline's ports, so a crash now
    // does not leave the next boot's baseline without them.
    this.save(() => this.saved.write(next, this.adopting ? [...this.bootPorts, ...this.desired.ports()] : this.desired.ports()));
    await this.sync.write();
  }

  /**
   * Boot and start-up: when nothing of ours is installed, put in the empty plan, which already drops
   * DNATed new connections to every container (fail-closed), and with `ports.default: deny` closes
   * `knownPorts` (the published ports the last run saw) by host port to everyone, which is what also
   * closes docker-proxy's path (IPv6 clients of a container without IPv6) until they are judged. An
   * existing ruleset stays as it is. Either stays until the start-up reconcile is done (`reconciled`),
   * then is replaced atomically, so a restart or a reboot opens nothing. `installed`: whether a ruleset
   * of ours is there, when the caller has read it already (the daemon, before the policy was known).
   */
  async baseline(knownPorts: readonly PortElement[] = [], installed: Promise<boolean> = this.backend.installed()): Promise<boolean> {
    this.adopting = true;
    this.bootPorts = knownPorts;
    if (await installed) return false;
    const closed = new IncrementalPlan();
    if (this.options.defaultDeny) closed.set({ containerId: 'baseline', claims: knownPorts.map((p) => ({ ...p, sources: [] })), endpoints: [] });
    await this.backend.replace(closed.plan(this.options));
    return true;
  }

  /**
   * Every container has been judged (the start-up reconcile is done): the ruleset of `baseline` is
   * replaced now. True when this call replaced it (the first), false after.
   */
  async reconciled(): Promise<boolean> {
    if (!this.adopting) return false;
    this.adopting = false;
    this.bootPorts = [];
    await this.sync.write();
    this.log.info({ firewall: { backend: this.backend.name } }, 'start-up ruleset replaced after the start-up reconcile');
    return true;
  }

  /**
   * Compares the kernel with what we applied; repairs (atomic replace) and says so when they differ.
   * When we do not know what the kernel holds (a ruleset from an earlier run, a failed apply), replaces.
   * Reading the kernel's table costs time in proportion to it (seconds at 10,000 containers), so it
   * is read outside the transaction queue (KernelSync.repairDrift), while events go on: what is desired when the read begins is
   * compared with it. With a backend that `readsWhileChanging` (nftables), the elements that may differ
   * because of that are known and left out: those pending or being applied when the read began, and
   * every one changed until the comparison ends (`KernelSync.changing`); every other element was
   * installed as desired all along, so it must be in the kernel exactly as in the snapshot, and a drift
   * there is found whatever the events did (one left out is compared at the next check). Otherwise a
   * read that overlapped a transaction is redone. A drift found, or reads that kept overlapping a
   * replace, are checked again in the queue, where it repairs.
   */
  repairDrift(): Promise<string | null> {
    return this.sync.repairDrift();
  }

  /** Our table was deleted: repair at once (`KernelSync.repairNow`), no read beside the queue first. */
  repairNow(): Promise<string | null> {
    return this.sync.repairNow();
  }

  /** A drift read outside the queue (see `repairDrift`); null when the kernel's content is not ours to compare yet. */
  private readHolds(changing: Set<string>): Promise<boolean> | null {
    const options = this.installedOptions;
    if (this.adopting || options === null) return null;
    const concurrent = this.backend.readsWhileChanging;
    for (const key of [...this.pending.keys(), ...(this.inFlight ? diffKeys(this.inFlight) : [])]) changing.add(key);
    return this.backend.drift(this.desired.snapshot(options), concurrent ? changing : undefined).then((drift) => drift === null);
  }

  /** Audit mode: reads what the kernel counted since the last call and reports each source and port with the container it reached. */
  async checkAudit(): Promise<void> {
    const drops = await this.backend.wouldHaveDropped();
    this.log.debug({ firewall: { wouldHaveDropped: drops.length } }, 'audit counters read');
    for (const drop of drops) {
      const addr = parseAddress(drop.hostAddress);
      const owner = addr ? this.desired.claimants(addr, drop.proto, drop.port)[0] : undefined;
      this.onWouldDrop(owner === undefined ? null : (this.refs.get(owner) ?? null), drop);
    }
  }

  /** The desired plan as of now (status output, tests). Costs all containers. */
  plan(): FirewallPlan {
    return this.desired.plan(this.options);
  }

  /**
   * The state file is written before the transaction it describes, so it never lacks a port the kernel
   * allows. A failed write (disk full) must not keep a container's ports from being enforced: it is logged.
   */
  private save(write: () => void): void {
    try {
      write();
    } catch (error) {
      this.log.error({ err: error }, 'firewall state for the boot baseline not saved');
    }
  }

  /** Each container's elements in turn, one write for all. */
  private async change(...all: ContainerElements[]): Promise<void> {
    for (const elements of all) {
      const diff = this.desired.set(elements);
      this.sync.changing(() => diffKeys(diff));
      this.pending.record(diff);
    }
    if (!this.pending.empty || this.installedOptions === null) await this.sync.write();
  }

  /** UNJUDGED's elements as `claims`, when they change. */
  private closing(claims: readonly PortClaim[]): ContainerElements[] {
    if (claims.length === this.unjudged.length && claims.every((c) => this.unjudged.some((u) => sameClaim(u, c)))) return [];
    this.unjudged = claims;
    return [{ containerId: UNJUDGED, claims: [...claims], endpoints: [] }];
  }

  /** The host ports served now, judged or not; none when they cannot be read (said in the log). */
  private async servedPorts(): Promise<readonly ServedPort[]> {
    try {
      return await this.served();
    } catch (error) {
      this.log.error({ err: error }, 'served host ports unreadable; ports not yet judged stay as they are');
      return [];
    }
  }

  /** Claims closing those of `served` that no container's judgement claims as of now. */
  private closedUnjudged(served: readonly ServedPort[]): PortClaim[] {
    return closedUntilJudged(served, (claim) => this.desired.covers(claim, UNJUDGED));
  }

  private async verify(): Promise<string | null> {
    if (this.adopting) return null; // the earlier run's ruleset is not ours to compare yet
    // Whoever took our rules may have taken Docker's DNAT (`nft flush ruleset`): docker-proxy then serves
    // every published port on the input path, where a port not yet judged is open to every source
    // (the forward path's fail-closed drop is for DNATed traffic). Under `ports.default: deny` those
    // ports are closed to everyone in the repair's replace, until their containers are judged. Read
    // beside the kernel's table, so a repair waits for the slower of the two, not for both.
    const served = this.options.defaultDeny ? this.servedPorts() : null;
    const drift = await this.backend.drift(this.desired.snapshot(this.installedOptions ?? this.options));
    if (!drift) return null;
    await this.drifted(drift, served);
    await this.flush();
    this.onDriftRepaired(drift);
    return drift;
  }

  /**
   * Drift found, by a check or by an update that found our ruleset gone: said, and the replace that
   * follows rebuilt from what is desired — under `ports.default: deny` with the served ports nobody
   * has judged yet closed to every source.
   */
  private async drifted(drift: string, served: Promise<readonly ServedPort[]> | null): Promise<void> {
    this.log.warn({ firewall: { backend: this.backend.name, drift } }, 'firewall drift repaired');
    this.installedOptions = null;
    if (served) {
      for (const elements of this.closing(this.closedUnjudged(await served))) this.desired.set(elements);
      if (this.unjudged.length > 0) this.log.warn({ firewall: { closedUntilJudged: this.unjudged.map((c) => `${c.hostAddr.text} ${c.proto}/${c.port}`) } }, 'ports docker-proxy serves, not yet judged, closed to every source');
    }
  }

  private async flush(): Promise<void> {
    if (this.adopting) return;
    /** Our ruleset found gone by a failed update: drift, repaired by the replace below. */
    let gone: string | null = null;
    if (this.installedOptions && sameOptions(this.installedOptions, this.options)) {
      if (this.pending.empty) return;
      const diff = this.pending.take();
      try {
        this.save(() => this.saved.publishing(this.options, diff.add.ports, () => this.desired.ports()));
        this.inFlight = diff;
        await this.backend.update(diff, () => this.desired.plan(this.options));
        return;
      } catch (error) {
        this.log.warn({ firewall: { backend: this.backend.name }, err: error }, 'firewall update failed; replacing the whole ruleset');
        // `nft flush ruleset` or a deleted table, met by a container's update before the table watch or
        // the drift check came to it: said and alerted as they would, whichever finds it first.
        if (!(await this.backend.installed().catch(() => true))) gone = 'the ruleset dockwarden applied is missing';
      } finally {
        this.inFlight = null;
      }
    }
    if (gone !== null) await this.drifted(gone, this.options.defaultDeny ? this.servedPorts() : null);
    await this.replace();
    if (gone !== null) this.onDriftRepaired(gone);
  }

  /** The whole ruleset written from what is desired now, retried a few times. */
  private async replace(): Promise<void> {
    this.installedOptions = null;
    for (let attempt = 0; ; attempt++) {
      const options = this.options;
      this.pending.clear(); // the replace installs everything desired up to this moment
      try {
        const plan = this.desired.plan(options);
        this.save(() => this.saved.write(options, plan.ports));
        await this.sync.replacing(() => this.backend.replace(plan));
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

/** The interface lists of the options, and what the log calls an entry. */
const INTERFACE_LISTS = { bridges: 'Docker bridge', routed4: 'routed bridge', routed6: 'routed bridge', otherBridges: 'other bridge' } as const;

const sameClaim = (a: PortClaim, b: PortClaim): boolean => a.hostAddr.text === b.hostAddr.text && a.proto === b.proto && a.port === b.port;

const sameOptions = (a: PlanOptions, b: PlanOptions): boolean =>
  a.defaultDeny === b.defaultDeny && (a.audit ?? false) === (b.audit ?? false) && sameCgroup(a.engineCgroup, b.engineCgroup) && (Object.keys(INTERFACE_LISTS) as Array<keyof typeof INTERFACE_LISTS>).every((list) => (a[list] ?? []).join() === (b[list] ?? []).join());
