import type { Logger } from 'pino';
import type { TreeResult } from '../adapters/selinux/native.js';
import type { Violation } from '../domain/decision.js';
import { containerRef, type ContainerFacts } from '../domain/facts.js';
import type { RelabelOp } from '../domain/selinux/plan.js';
import { countsOf, type RelabelOutcome, type RelabelRecord } from './relabel-record.js';
import type { Enforcer, Tracked } from './reconciler.js';

export interface SelinuxEnforcerDeps {
  readonly relabelTree: (root: string, typeLevel: string) => Promise<TreeResult>;
  /** Keeps a record in the state dir (`dockwarden status` shows them). */
  readonly record: (record: RelabelRecord) => void;
  /** Registers a relabelled path with `semanage fcontext`; null where semanage is missing. */
  readonly registerFcontext: ((path: string, typeLevel: string) => Promise<void>) | null;
  readonly log: Logger;
  readonly now?: () => Date;
}

const ADVICE: Partial<Record<RelabelOutcome, string>> = {
  unsupported:
    'the filesystem cannot hold SELinux labels (NFS, FUSE, …): mount it with a context= option (e.g. context="system_u:object_r:container_file_t:s0"), or for NFS set the boolean virt_use_nfs',
  'read-only': 'the filesystem is read-only: label it where it is written, or mount it with a context= option',
};

/**
 * Relabels the host paths the decision names (`Decision.relabel`: a container's bind mounts and
 * local volumes, under the policy's roots; README "SELinux relabelling"). It acts on `create` already (the reconciler syncs a created container before it is
 * started, and Docker labels in the start path, before the process runs), and again at start and
 * at reconcile for whatever was missed; a path is walked once per container start, and entries that
 * already carry the label are not written again. Refusals are the decision's `selinux-relabel`
 * violations (alerted like every violation); they are recorded here for `dockwarden status`.
 */
export function selinuxEnforcer(deps: SelinuxEnforcerDeps): Enforcer {
  const { log } = deps;
  const now = deps.now ?? (() => new Date());
  /** Per container: the walks done for its current start (`path`, label, startedAt). */
  const done = new Map<string, Set<string>>();
  const refusalsRecorded = new Map<string, string>();
  const registered = new Set<string>();

  function recordRefusals(facts: ContainerFacts, violations: readonly Violation[]): void {
    // dockerd lists mounts in no fixed order: compare as a set.
    const key = JSON.stringify(violations.map((v) => JSON.stringify(v)).sort());
    if ((refusalsRecorded.get(facts.id) ?? '[]') === key) return;
    refusalsRecorded.set(facts.id, key);
    for (const v of violations) deps.record(record(facts, (v.details as { realSource: string }).realSource, 'refused', null));
  }

  function record(facts: ContainerFacts, path: string, outcome: RelabelOutcome, result: TreeResult | null): RelabelRecord {
    return {
      time: now().toISOString(),
      container: { id: facts.id, name: facts.name },
      path,
      outcome,
      oldLabel: result?.rootOldLabel ?? null,
      newLabel: result?.rootNewLabel ?? null,
      counts: result ? countsOf(result) : null,
      errors: result?.errors ?? [],
    };
  }

  async function relabel(facts: ContainerFacts, op: RelabelOp): Promise<boolean> {
    const result = await deps.relabelTree(op.path, op.typeLevel);
    const fields = {
      container: containerRef(facts),
      path: op.path,
      label: op.typeLevel,
      // Whether the container was still only created when this sync inspected it (dockerd's own
      // labelling happens before the process runs; a walk for a running container came after).
      beforeStart: !facts.state.running,
      counts: countsOf(result),
    };
    if (result.rootError === 'ENOENT') {
      // `-v /new/dir:/x` is created by dockerd at start: it is labelled then.
      log.debug(fields, 'SELinux relabel: the path does not exist yet');
      return false;
    }
    const outcome = outcomeOf(result);
    if (outcome === 'relabelled') {
      if (result.labelled > 0) {
        deps.record(record(facts, op.path, outcome, result));
        log.info({ ...fields, oldLabel: result.rootOldLabel, newLabel: result.rootNewLabel }, 'SELinux relabel done');
      } else log.debug(fields, 'SELinux relabel: already labelled');
      if (op.fallback) log.warn(fields, 'SELinux relabel: the container has no MountLabel; private used the fixed fallback level');
      await register(op);
      return true;
    }
    deps.record(record(facts, op.path, outcome, result));
    const extra = { ...fields, rootError: result.rootError, errors: result.errors, advice: ADVICE[outcome] };
    if (outcome === 'failed') log.error(extra, 'SELinux relabel failed');
    else log.warn(extra, outcome === 'partial' ? 'SELinux relabel incomplete: some entries could not be labelled' : 'SELinux relabel: cannot label here');
    return outcome !== 'failed';
  }

  async function register(op: RelabelOp): Promise<void> {
    const key = `${op.path}\0${op.typeLevel}`;
    if (deps.registerFcontext === null || registered.has(key)) return;
    try {
      await deps.registerFcontext(op.path, op.typeLevel);
      registered.add(key);
      log.info({ path: op.path, label: op.typeLevel }, 'SELinux file context registered with semanage');
    } catch (error) {
      log.error({ path: op.path, label: op.typeLevel, err: error }, 'semanage fcontext failed; the label lives only in the xattrs');
    }
  }

  return {
    name: 'selinux',
    async apply({ facts, decision }: Tracked) {
      recordRefusals(facts, decision.violations.filter((v) => v.check === 'selinux-relabel'));
      const walks = done.get(facts.id) ?? new Set<string>();
      done.set(facts.id, walks);
      const keyOf = (op: RelabelOp) => `${op.path}\0${op.typeLevel}\0${facts.state.startedAt}`;
      for (const op of decision.relabel) {
        if (!walks.has(keyOf(op)) && (await relabel(facts, op))) walks.add(keyOf(op));
      }
    },
    async forget(id: string) {
      done.delete(id);
      refusalsRecorded.delete(id);
    },
  };
}

function outcomeOf(result: TreeResult): RelabelOutcome {
  if (result.rootError === 'EOPNOTSUPP' || result.rootError === 'ENOTSUP') return 'unsupported';
  if (result.rootError === 'EROFS') return 'read-only';
  if (result.rootError !== null) return 'failed';
  if (result.failed > 0) return 'partial';
  return 'relabelled';
}
