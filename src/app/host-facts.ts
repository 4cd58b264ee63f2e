import { isolationLooksAt } from '../domain/bridge/ports.js';
import type { ContainerFacts } from '../domain/facts.js';
import type { HostFacts } from '../domain/host-facts.js';
import type { Policy } from '../domain/policy/model.js';
import type { RelabelHostReader } from './relabel-host.js';

export interface HostFactsReader {
  /** What `evaluate` needs to know of the host for this container, read now (cached where it cannot have changed). */
  read(facts: ContainerFacts, policy: Policy): Promise<HostFacts>;
  /** The container is gone: drop what is cached for it. */
  forget(id: string): void;
}

export interface HostFactsSources {
  /** Relabel planning's host facts; null where volumes are not relabelled here. */
  readonly relabel: RelabelHostReader | null;
  /** The container's bridge ports by MAC (`/proc/<pid>/ns/net`); null where bridge isolation is not in force. */
  readonly veths: ((pid: number) => Promise<ReadonlyMap<string, string>>) | null;
}

/**
 * Reads the host facts once per sync, before the judgement. A container's veths are looked up again
 * only when what they were found from (its init pid, its networks) changed: a periodic reconcile
 * costs no netns walk.
 */
export function hostFactsReader(sources: HostFactsSources): HostFactsReader {
  const veths = new Map<string, { readonly basis: string; readonly found: HostFacts['veths'] }>();

  async function vethsOf(facts: ContainerFacts, policy: Policy): Promise<HostFacts['veths']> {
    if (sources.veths === null || !isolationLooksAt(facts, policy.network)) {
      veths.delete(facts.id);
      return null;
    }
    const basis = JSON.stringify([facts.state.pid, facts.networks]);
    const known = veths.get(facts.id);
    if (known?.basis === basis) return known.found;
    let found: HostFacts['veths'];
    try {
      found = await sources.veths(facts.state.pid);
    } catch (error) {
      // Not cached: the next sync looks again.
      veths.delete(facts.id);
      return { error: error instanceof Error ? error.message : String(error) };
    }
    veths.set(facts.id, { basis, found });
    return found;
  }

  return {
    async read(facts, policy) {
      const { relabel } = policy.volumes.selinux;
      const [relabelHost, found] = await Promise.all([
        // What other containers mount matters to private labels only, and only to a container with a host path to label.
        sources.relabel === null || relabel === 'off' ? null : sources.relabel(facts, policy, relabel === 'private' && facts.mounts.some((m) => m.realSource.startsWith('/'))),
        vethsOf(facts, policy),
      ]);
      return { relabel: relabelHost, veths: found };
    },
    forget(id) {
      veths.delete(id);
    },
  };
}
