import type { ContainerFacts } from '../facts.js';
import type { StorageDirectory, VolumesPolicy } from '../policy/model.js';
import { selectorMatches } from '../selector.js';

/** The declared storage directories this container bind-mounts: they must exist, with their owner and mode, before it runs. */
export function storageDirectoriesFor(volumes: VolumesPolicy, facts: ContainerFacts): StorageDirectory[] {
  const sources = new Set(facts.mounts.filter((m) => m.type === 'bind').flatMap((m) => [m.source, m.realSource]));
  return volumes.create.filter((dir) => sources.has(dir.path) && selectorMatches(dir.match, facts));
}
