import type { Logger } from 'pino';
import type { DirectoryOutcome } from '../adapters/selinux/native.js';
import type { Enforcer, Tracked } from './reconciler.js';
import { containerRef } from '../domain/facts.js';

/**
 * Persistent storage directories (`volumes.create`, the decision's `storage`): a declared directory a matching container
 * mounts is made, with its owner and mode, when it is missing. Done on `create`, so it exists before
 * dockerd's start path would make it root-owned; when dockerd won that race (`docker run`), its empty
 * root:root 0755 directory is given the declared owner and mode at the start event.
 */
export function storageEnforcer(prepare: (path: string, mode: number, uid: number, gid: number) => DirectoryOutcome, log: Logger): Enforcer {
  return {
    name: 'storage',
    async apply({ facts, decision }: Tracked) {
      for (const dir of decision.storage) {
        const fields = { container: containerRef(facts), path: dir.path, rule: `volumes.create[${dir.index}]` };
        try {
          const outcome = prepare(dir.path, dir.mode, dir.owner.uid, dir.owner.gid);
          if (outcome === 'exists') continue;
          log.info({ ...fields, owner: `${dir.owner.uid}:${dir.owner.gid}`, mode: dir.mode.toString(8).padStart(4, '0'), beforeStart: !facts.state.running }, outcome === 'created' ? 'storage directory created' : 'storage directory dockerd made given its owner and mode');
        } catch (error) {
          log.error({ ...fields, err: error }, 'storage directory cannot be made');
        }
      }
    },
    async forget() {},
  };
}
