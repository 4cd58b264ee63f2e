import type { DockerEngine } from '../adapters/docker/engine.js';
import { realpaths } from '../adapters/docker/read-facts.js';
import { detectSelinux } from '../adapters/selinux/detect.js';
import { readHomes } from '../adapters/selinux/homes.js';
import { prepareDirectory, relabelTree } from '../adapters/selinux/native.js';
import { findSemanage, registerFcontext } from '../adapters/selinux/semanage.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Enforcer } from './reconciler.js';
import { appendRelabelRecord } from './relabel-record.js';
import { selinuxEnforcer } from './selinux-enforcer.js';
import { storageEnforcer } from './storage-enforcer.js';

/**
 * Persistent volumes: storage directories made first, then (where labels matter) relabelled, in
 * that order, for each container.
 */
export async function volumesEnforcer(config: Config, docker: DockerEngine, log: Logger): Promise<Enforcer> {
  const relabel = await selinuxEnforcerFor(config, docker, log);
  const steps = [storageEnforcer(prepareDirectory, log), ...(relabel ? [relabel] : [])];
  return {
    name: 'volumes',
    async apply(tracked, policy) {
      for (const step of steps) await step.apply(tracked, policy);
    },
    async forget(id) {
      for (const step of steps) await step.forget(id);
    },
  };
}

/**
 * The relabel enforcer when labels matter here (`selinux.enabled`, else detection), or null; either
 * way it says so once, at start-up.
 */
async function selinuxEnforcerFor(config: Config, docker: DockerEngine, log: Logger): Promise<Enforcer | null> {
  const setting = config.selinux.enabled;
  if (setting === false) {
    log.info('SELinux relabelling is off (selinux.enabled: false); volumes are not relabelled');
    return null;
  }
  if (setting === 'auto') {
    const host = await detectSelinux();
    if (!host.enabled) {
      log.info({ selinux: { reason: host.reason } }, 'SELinux is not enabled on this host; volumes are not relabelled');
      return null;
    }
    log.info({ selinux: { reason: host.reason } }, 'SELinux is enabled; volumes are relabelled as the policy says');
  } else {
    log.warn('SELinux relabelling forced on (selinux.enabled: true): every non-privileged container counts as confined');
  }
  const semanage = findSemanage();
  if (semanage === null) log.info('semanage not found: relabelled paths keep their label only in their xattrs, and a full filesystem relabel would reset them');
  return selinuxEnforcer({
    forced: setting === true,
    docker,
    homes: () => readHomes(),
    realpaths,
    relabelTree,
    record: (record) => appendRelabelRecord(config.state.dir, record),
    registerFcontext: semanage === null ? null : (path, typeLevel) => registerFcontext(semanage, path, typeLevel),
    log,
  });
}
