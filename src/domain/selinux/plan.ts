import type { Violation } from '../decision.js';
import type { ContainerFacts, MountFacts } from '../facts.js';
import { contains, overlaps } from '../host-path.js';
import { REFUSED_RELABEL_ROOTS, type Severity, type VolumesPolicy } from '../policy/model.js';

/**
 * Which host paths of one container get which SELinux label, and which are refused (README "Persistent volumes (SELinux)").
 * Pure: the host's facts (Docker's data root, users' homes, what other running containers mount)
 * come in as `RelabelHost`. Like moby's `:z`/`:Z`, but only ever under the policy's roots.
 */

/** `shared`, like `:z`: any container may use it. */
export const SHARED_TYPE_LEVEL = 'container_file_t:s0';
/**
 * `private` for a container without a MountLabel (forced mode on a host without SELinux, where
 * dockerd gives none): one fixed level, so the label is still a valid `:Z`-like one. Said in the log.
 */
export const FALLBACK_PRIVATE_TYPE_LEVEL = 'container_file_t:s0:c1022,c1023';

export interface RelabelHost {
  /**
   * `volumes.selinux.roots` with symlinks resolved (mount paths are compared as real paths). A root
   * that resolves to a system directory is dropped by `planRelabel`: the policy could not name it.
   */
  readonly roots: readonly string[];
  /** `selinux.enabled: true`: act although the host shows no SELinux, and count every non-privileged container as confined. */
  readonly forced: boolean;
  /** Docker's data root with symlinks resolved; null when unknown. */
  readonly dataRoot: string | null;
  /** Users' home directories (from the password database). */
  readonly homes: readonly string[];
  /** Real host paths mounted by running containers other than this one. */
  readonly othersMounts: readonly string[];
}

export interface RelabelOp {
  /** The real host path (symlinks resolved): the walker opens exactly this, refusing any symlink on the way. */
  readonly path: string;
  readonly mount: MountFacts;
  /** `type:level[:categories]`; each entry keeps its own SELinux user and role. */
  readonly typeLevel: string;
  /** `private` without a MountLabel: the fixed fallback level was used. */
  readonly fallback: boolean;
}

export type RefusalReason = 'system-path' | 'home' | 'docker-data-root' | 'outside-roots' | 'shared-private' | 'bad-mount-label' | 'mounted-device' | 'unresolved';

export interface RelabelPlan {
  /** Why nothing is considered at all; null when the mounts were looked at. */
  readonly skipped: 'off' | 'unconfined' | null;
  readonly ops: readonly RelabelOp[];
  /** One per refused mount (check `selinux-relabel`); mount paths only in `details`. */
  readonly violations: readonly Violation[];
}

const REFUSALS: Readonly<Record<RefusalReason, { readonly severity: Severity; readonly message: string }>> = {
  'system-path': { severity: 'high', message: 'SELinux relabel refused: the mount is a system directory' },
  home: { severity: 'high', message: "SELinux relabel refused: the mount is or contains a user's home directory" },
  'docker-data-root': { severity: 'high', message: "SELinux relabel refused: the mount is or contains Docker's data root (only volume _data directories may be relabelled)" },
  'outside-roots': { severity: 'low', message: 'SELinux relabel refused: the mount is outside volumes.selinux.roots' },
  'shared-private': { severity: 'medium', message: 'SELinux relabel refused: a private label on a path another running container mounts would lock that container out' },
  'bad-mount-label': { severity: 'medium', message: "SELinux relabel refused: the container's MountLabel is not a valid SELinux label" },
  'mounted-device': {
    severity: 'medium',
    message: 'SELinux relabel refused: the volume mounts a block device or a network filesystem (label it with a context= mount option)',
  },
  unresolved: { severity: 'medium', message: 'SELinux relabel refused: what the mount shows on the host could not be resolved in time' },
};

const NAME = '[A-Za-z0-9_.]+';
const CATEGORIES = 'c\\d+(?:[.,]c\\d+)*';
const LEVEL = `s\\d+(?::${CATEGORIES})?(?:-s\\d+(?::${CATEGORIES})?)?`;
/** `user:role:type:level`; captures `type:level`. */
const LABEL = new RegExp(`^${NAME}:${NAME}:(${NAME}:${LEVEL})$`);

/** The `type:level` part of a full label, or null when it is not one. */
export function typeLevelOf(label: string): string | null {
  return LABEL.exec(label)?.[1] ?? null;
}

/**
 * A container is confined when SELinux will enforce its label: it has a ProcessLabel and is not
 * privileged (nor `label=disable`). Forced mode runs where dockerd sets no labels at all, so there
 * every non-privileged container without `label=disable` counts as confined.
 */
export function isConfined(facts: ContainerFacts, forced: boolean): boolean {
  if (facts.privileged || facts.security.labelOptions.includes('disable')) return false;
  return forced || facts.processLabel !== '';
}

export function planRelabel(volumes: VolumesPolicy, facts: ContainerFacts, host: RelabelHost): RelabelPlan {
  const { relabel } = volumes.selinux;
  if (relabel === 'off') return { skipped: 'off', ops: [], violations: [] };
  if (!isConfined(facts, host.forced)) return { skipped: 'unconfined', ops: [], violations: [] };
  const roots = host.roots.filter((root) => !REFUSED_RELABEL_ROOTS.includes(root));
  const ops: RelabelOp[] = [];
  const violations: Violation[] = [];
  for (const mount of facts.mounts.filter(hasHostPath)) {
    // A volume bound elsewhere by its driver options is that place; its `_data` is only where it is mounted.
    const path = mount.backing === 'bind' && mount.device !== '' ? mount.device : mount.realSource;
    const reason =
      (mount.unresolved !== null ? 'unresolved' : null) ??
      (mount.backing === 'device' || mount.backing === 'network' ? 'mounted-device' : null) ??
      refusal(path, roots, host) ??
      // Every other host path it really shows is judged too (a `_data` that is a bind of /etc is /etc), as a
      // place that must never be labelled; not for being under the roots (a root may itself be a host bind mount).
      mount.hostPaths.map((p) => refusal(p, roots, host)).find((r) => r !== null && r !== 'outside-roots') ??
      (relabel === 'private' && host.othersMounts.some((other) => overlaps(other, path)) ? 'shared-private' : null);
    const typeLevel = relabel === 'shared' ? SHARED_TYPE_LEVEL : facts.mountLabel === '' ? FALLBACK_PRIVATE_TYPE_LEVEL : typeLevelOf(facts.mountLabel);
    const why = reason ?? (typeLevel === null ? 'bad-mount-label' : null);
    if (why !== null) violations.push(refused(why, mount, relabel));
    else ops.push({ path, mount, typeLevel: typeLevel!, fallback: relabel === 'private' && facts.mountLabel === '' });
  }
  return { skipped: null, ops, violations };
}

/** Bind mounts and local volumes: the host paths SELinux must let the container use. */
function hasHostPath(mount: MountFacts): boolean {
  return mount.realSource.startsWith('/') && (mount.type === 'bind' || (mount.type === 'volume' && mount.driver === 'local'));
}

function refusal(path: string, roots: readonly string[], host: RelabelHost): RefusalReason | null {
  if (REFUSED_RELABEL_ROOTS.includes(path)) return 'system-path';
  if (isHome(path, host.homes)) return 'home';
  if (host.dataRoot !== null && contains(path, host.dataRoot)) return 'docker-data-root';
  if (host.dataRoot !== null && contains(host.dataRoot, path) && !isVolumeData(path, host.dataRoot)) return 'docker-data-root';
  if (!roots.some((root) => contains(root, path))) return 'outside-roots';
  return null;
}

/** A home itself, a directory holding one, or any `/home/<name>` (as go-selinux refuses). */
function isHome(path: string, homes: readonly string[]): boolean {
  return /^\/home\/[^/]+$/.test(path) || homes.some((home) => home !== '/' && contains(path, home));
}

/** `<data root>/volumes/<name>/_data` or below: a local volume's content, which may be relabelled. */
function isVolumeData(path: string, dataRoot: string): boolean {
  const rest = path.slice(dataRoot.length).split('/');
  return rest[1] === 'volumes' && rest[2] !== undefined && rest[2] !== '' && rest[3] === '_data';
}

function refused(reason: RefusalReason, mount: MountFacts, relabel: 'shared' | 'private'): Violation {
  const { severity, message } = REFUSALS[reason];
  return {
    check: 'selinux-relabel',
    severity,
    action: 'alert',
    message,
    details: { reason, relabel, source: mount.source, realSource: mount.realSource, hostPaths: mount.hostPaths, destination: mount.destination, type: mount.type },
  };
}
