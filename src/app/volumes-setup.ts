import type { DockerEngine } from '../adapters/docker/engine.js';
import { realpaths } from '../adapters/docker/read-facts.js';
import { detectSelinux } from '../adapters/selinux/detect.js';
import { readHomes } from '../adapters/selinux/homes.js';
import { pathProbe, type PathProbe } from '../adapters/fs/path-probe.js';
import { prepareDirectory, relabelTree, type TreeResult } from '../adapters/selinux/native.js';
import { findSemanage, registerFcontext } from '../adapters/selinux/semanage.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Enforcer } from './reconciler.js';
import { appendRelabelRecord } from './relabel-record.js';
import { selinuxEnforcer } from './selinux-enforcer.js';
import { storageEnforcer } from './storage-enforcer.js';
import { relabelHostReader, type RelabelHostReader } from './relabel-host.js';

/**
 * Persistent volumes: storage directories made first, then (where labels matter) relabelled, in
 * that order, for each container.
 */
export async function volumesEnforcer(config: Config, log: Logger, relabelOn: boolean): Promise<Enforcer> {
  const relabel = relabelOn ? selinuxEnforcerFor(config, log) : null;
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

/** Whether relabelling is on here: `selinux.enabled`, else detection; `why` for the one start-up line. */
export async function relabelSetting(config: Config): Promise<{ readonly on: boolean; readonly forced: boolean; readonly why: string }> {
  const setting = config.selinux.enabled;
  if (setting !== 'auto') return { on: setting, forced: setting, why: 'selinux.enabled' };
  const host = await detectSelinux();
  return { on: host.enabled, forced: false, why: host.reason };
}

/** The host facts relabel planning reads, from the real host. */
export function hostReader(docker: DockerEngine, forced: boolean): RelabelHostReader {
  return relabelHostReader({ forced, docker, homes: () => readHomes(), realpaths });
}

/** The relabel enforcer, where labels matter here (`relabelSetting`). */
function selinuxEnforcerFor(config: Config, log: Logger): Enforcer {
  const semanage = findSemanage();
  if (semanage === null) log.info('semanage not found: relabelled paths keep their label only in their xattrs, and a full filesystem relabel would reset them');
  const probe = pathProbe();
  return selinuxEnforcer({
    relabelTree: (root, typeLevel) => relabelIfReachable(probe, root, typeLevel),
    record: (record) => appendRelabelRecord(config.state.dir, record),
    registerFcontext: semanage === null ? null : (path, typeLevel) => registerFcontext(semanage, path, typeLevel),
    log,
  });
}

/**
 * Relabel planning's host reader when labels matter here (`setting`, from `relabelSetting`), or null;
 * either way it says so once, at start-up.
 */
export async function relabelHostFor(config: Config, docker: DockerEngine, log: Logger, setting: ReturnType<typeof relabelSetting>): Promise<RelabelHostReader | null> {
  const { on, forced, why } = await setting;
  if (!on) {
    if (config.selinux.enabled === false) log.info('SELinux relabelling is off (selinux.enabled: false); volumes are not relabelled');
    else log.info({ selinux: { reason: why } }, 'SELinux is not enabled on this host; volumes are not relabelled');
    return null;
  }
  if (forced) log.warn('SELinux relabelling forced on (selinux.enabled: true): every non-privileged container counts as confined');
  else log.info({ selinux: { reason: why } }, 'SELinux is enabled; volumes are relabelled as the policy says');
  return hostReader(docker, forced);
}

/**
 * A walk starts only on a root that answers in time: the walk runs on one of libuv's four threads,
 * and one started on a hung mount would hold it for good. (A mount that hangs mid-walk still can.)
 */
async function relabelIfReachable(probe: PathProbe, root: string, typeLevel: string): Promise<TreeResult> {
  const reached = await probe.identity(root);
  if (!reached.ok && reached.reason === 'timeout') {
    return { visited: 0, labelled: 0, alreadyLabelled: 0, otherFilesystem: 0, vanished: 0, failed: 0, errors: [], rootError: 'ETIMEDOUT', rootOldLabel: null, rootNewLabel: null };
  }
  return relabelTree(root, typeLevel);
}
