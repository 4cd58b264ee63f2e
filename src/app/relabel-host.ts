import type { DockerEngine } from '../adapters/docker/engine.js';
import type { ContainerFacts } from '../domain/facts.js';
import type { Policy } from '../domain/policy/model.js';
import type { RelabelHost } from '../domain/selinux/plan.js';

export interface RelabelHostSources {
  /** `selinux.enabled: true`: see `RelabelHost.forced`. */
  readonly forced: boolean;
  readonly docker: Pick<DockerEngine, 'dataRoot' | 'runningMounts'>;
  readonly homes: () => Promise<string[]>;
  /** Each path with its symlinks resolved (itself when it cannot be). */
  readonly realpaths: (paths: readonly string[]) => Promise<string[]>;
}

export type RelabelHostReader = (facts: ContainerFacts, policy: Policy, others: boolean) => Promise<RelabelHost>;

/**
 * What relabel planning needs to know of this host, read when asked (the engine adapter keeps
 * Docker's data root). `others`: also what the other running containers mount — one engine call,
 * needed by `private` only.
 */
export function relabelHostReader(sources: RelabelHostSources): RelabelHostReader {
  return async (facts, policy, others) => {
    const [dataRoot, roots, homes, running] = await Promise.all([
      sources.docker.dataRoot(),
      sources.realpaths(policy.volumes.selinux.roots),
      sources.homes(),
      others ? sources.docker.runningMounts() : null,
    ]);
    running?.delete(facts.id);
    return { forced: sources.forced, roots, dataRoot, homes, othersMounts: running ? [...running.values()].flat() : [] };
  };
}
