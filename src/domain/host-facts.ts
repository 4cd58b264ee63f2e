import type { RelabelHost } from './selinux/plan.js';

/**
 * What judging a container needs to know of the host besides the container itself. Adapters read it
 * before `evaluate` (`app/host-facts.ts`), once per sync, cached where it does not change; `evaluate`
 * stays pure.
 */
export interface HostFacts {
  /** Relabel planning's view of the host; null where volumes are not relabelled here (no SELinux, `selinux.enabled: false`). */
  readonly relabel: RelabelHost | null;
  /**
   * The container's host-side bridge ports, by MAC; null when bridge isolation does not look at it
   * (isolation unavailable or off, not running, no MAC); an error when the lookup failed.
   */
  readonly veths: ReadonlyMap<string, string> | { readonly error: string } | null;
}

/** A judgement of the container alone: what `check` and the gate use where the host is not read. */
export const NO_HOST_FACTS: HostFacts = { relabel: null, veths: null };
