import { loadAddon } from '../native-addon.js';
import { hasMountsBelow } from './mountinfo.js';

/** What one walk did (native/selinux_label.c). Codes are errno names: `ENOTSUP` is reported as `EOPNOTSUPP`. */
export interface TreeResult {
  readonly visited: number;
  readonly labelled: number;
  readonly alreadyLabelled: number;
  /** Mount points below the root: neither labelled nor entered. */
  readonly otherFilesystem: number;
  /** Entries that disappeared (or were replaced) while the walk reached them. */
  readonly vanished: number;
  readonly failed: number;
  /** The first failures (at most 20), with the path as the walk reached it. */
  readonly errors: ReadonlyArray<{ readonly path: string; readonly code: string }>;
  /** Why the root itself could not be opened or labelled; null when it was. */
  readonly rootError: string | null;
  readonly rootOldLabel: string | null;
  readonly rootNewLabel: string | null;
}

interface Addon {
  relabelTree(root: string, typeLevel: string, statFiles: boolean): Promise<TreeResult>;
  lgetxattrLabel(path: string): string | null;
  lsetxattrLabel(path: string, label: string): void;
  useProcPaths(on: boolean): void;
  prepareDirectory(path: string, mode: number, uid: number, gid: number): DirectoryOutcome;
}

/** `adopted`: the empty root:root 0755 directory dockerd makes for a missing `-v` source, given the owner and mode. */
export type DirectoryOutcome = 'created' | 'adopted' | 'exists';

let loaded: Addon | undefined;
/** Loaded on first use, so commands that never label do not need it. */
const addon = (): Addon =>
  (loaded ??= loadAddon<Addon>('dw_selinux'));

/**
 * Labels `root` and everything below it on the same filesystem with `<own user>:<own role>:<typeLevel>`,
 * never following a symlink (not even in `root`'s own path), skipping entries already labelled,
 * the root last. Runs off the event loop. Regular files skip the device check when nothing is
 * mounted below `root` as the walk starts.
 */
export const relabelTree = (root: string, typeLevel: string): Promise<TreeResult> => addon().relabelTree(root, typeLevel, hasMountsBelow(root));

/** The `security.selinux` xattr of `path` itself (a symlink's own), or null when it has none. */
export const readLabel = (path: string): string | null => addon().lgetxattrLabel(path);

/** Tests: label through /proc/self/fd paths, as on kernels without getxattrat/setxattrat (before 6.13). */
export const useProcPaths = (on: boolean): void => addon().useProcPaths(on);

/** Sets the `security.selinux` xattr of `path` itself (a symlink's own). */
export const writeLabel = (path: string, label: string): void => addon().lsetxattrLabel(path, label);

/**
 * Makes `path` a directory owned by uid:gid with `mode` when it is missing (parents as root 0755),
 * or adopts dockerd's fresh empty one; an existing directory is otherwise left as it is. No symlink
 * is followed on the way.
 */
export const prepareDirectory = (path: string, mode: number, uid: number, gid: number): DirectoryOutcome => addon().prepareDirectory(path, mode, uid, gid);
