import type { Protocol } from '../../domain/facts.js';
import type { ElementDiff, FirewallPlan } from '../../domain/firewall/plan.js';

/** Audit mode: new connections from one source to one published port that were let through, not dropped. */
export interface WouldDrop {
  readonly source: string;
  /** The host address the connection was for (the port's own binding address for a wildcard under iptables). */
  readonly hostAddress: string;
  readonly proto: Protocol;
  readonly port: number;
  readonly connections: number;
}

/**
 * One netfilter backend (nftables, iptables). Everything dockwarden owns is described by one
 * `FirewallPlan`; a backend renders it its own way and must keep these promises:
 * - `replace` is atomic: after a failure the previous ruleset is intact.
 * - `update` applies a small change; it may fail when the kernel no longer holds what we applied
 *   (someone edited it), and the caller then falls back to `replace`.
 * - nothing dockwarden renders ever contains a container name, label or image: only typed values.
 */
export interface FirewallBackend {
  readonly name: 'nftables' | 'iptables';
  /**
   * The nf_tables tables its rules live in, as nft spells them, for the daemon to hear of their
   * deletion at once (app/table-watch.ts); `shared`: others write there too (iptables-nft's `filter`).
   * None for iptables-legacy, whose tables send no notifications.
   */
  readonly nfTables: { readonly tables: readonly string[]; readonly shared: boolean };
  replace(plan: FirewallPlan): Promise<void>;
  /** `plan()` is the whole desired content, for backends without sets; computing it costs every container. */
  update(diff: ElementDiff, plan: () => FirewallPlan): Promise<void>;
  /**
   * Null when the kernel holds exactly what `replace`/`update` last installed; else what differs, in words.
   * `changing` (`elementKey`s), for a backend that `readsWhileChanging`: elements that transactions
   * may add or delete while this reads the kernel, left out of the comparison; it may grow until the
   * promise settles. Without it, no transaction may run meanwhile.
   */
  drift(expected: FirewallPlan, changing?: ReadonlySet<string>): Promise<string | null>;
  /** Whether `drift` honours `changing`, so a drift check need not wait for transactions (nftables: elements are sets). */
  readonly readsWhileChanging: boolean;
  /** Whether any ruleset of ours is installed (the boot-time baseline leaves an existing one alone). */
  installed(): Promise<boolean>;
  remove(): Promise<void>;
  /** Audit mode: the would-be drops the kernel counted since the last call, by source and port (none in enforce mode). */
  wouldHaveDropped(): Promise<WouldDrop[]>;
  /** The installed ruleset as the backend's own tool prints it, for `dockwarden firewall show`. */
  show(): Promise<string>;
}
