import { posix } from 'node:path';
import { contains } from './host-path.js';

/**
 * What is really mounted, from the kernel's mount tables (`/proc/<pid>/mountinfo`) rather than from
 * what a container asked for. A mount is a filesystem (device `major:minor`) and a directory in it
 * (`root`); the same pair in the host's table says where that content sits on the host. Pure.
 */
export interface MountEntry {
  readonly major: number;
  readonly minor: number;
  /** The directory of the filesystem this mount shows (`/etc` for a bind of /etc on the root fs). */
  readonly root: string;
  /** Where it is mounted, relative to the reading process's root. */
  readonly mountPoint: string;
  /** Per-mount options (`rw`, `ro`, `nosuid`, …). */
  readonly options: readonly string[];
  readonly fstype: string;
  /** The mount source as given to mount(2) (a device path, `server:/export`, `tmpfs`…). */
  readonly source: string;
  /** A member of a shared peer group (optional field `shared:N`): mounts made below it propagate to its peers. */
  readonly shared: boolean;
}

/**
 * One mountinfo line (proc(5)): `id parent major:minor root mountpoint options [optional fields…] -
 * fstype source superoptions`, fields split at single spaces. The optional fields end at the first
 * field that is `-`; superoptions (overlay's long `lowerdir=` list) are not read. Each repetition
 * of the optional group starts with a space its fields cannot hold: linear, whatever the text.
 * Sticky, matched at each line's start: lines are split at newlines only (a `^` in multiline mode
 * would also start one after a carriage return, which a path or an option may hold unescaped).
 */
const MOUNT_LINE = /[^ \n]* [^ \n]* (\d+):(\d+) ([^ \n]*) ([^ \n]*) ([^ \n]*)((?: [^ \n]*)*?) - ([^ \n]*) ([^ \n]*)/y;
const SHARED = / shared:\d+(?= |$)/;

/**
 * Parses mountinfo (proc(5)); lines that do not parse are skipped. Each line is matched by one
 * linear expression: every sync parses its container's table (and the host's, thousands of lines,
 * when it mounts a host path), and splitting each line into all its fields cost a start-up reconcile
 * of 1,000 containers a quarter of its allocations. `at`: only the entries mounted at these points, in
 * the table's order (a container's facts look at its root and its configured mounts, a few of its
 * ~30 lines); the other lines are passed over by their mount point alone, without the expression's
 * captures, the largest of that reconcile's allocations after the split (~30 KB a container, 15 %).
 */
export function parseMountInfo(text: string, at?: ReadonlySet<string>): MountEntry[] {
  const entries: MountEntry[] = [];
  for (let start = 0; start < text.length; ) {
    const end = lineEnd(text, start);
    const point = at && fifthField(text, start, end);
    if (at === undefined || (point != null && at.has(unescape(point)))) {
      MOUNT_LINE.lastIndex = start;
      const match = MOUNT_LINE.exec(text);
      if (match) entries.push(entryOf(match));
    }
    start = end + 1;
  }
  return entries;
}

function entryOf([, major, minor, root, mountPoint, options, optional, fstype, source]: RegExpMatchArray): MountEntry {
  return {
    major: Number(major),
    minor: Number(minor),
    root: unescape(root!),
    mountPoint: unescape(mountPoint!),
    options: options!.split(','),
    fstype: fstype!,
    source: unescape(source!),
    shared: SHARED.test(optional!),
  };
}

function lineEnd(text: string, start: number): number {
  const end = text.indexOf('\n', start);
  return end === -1 ? text.length : end;
}

/** The mount point field of the line `[start, end)`, split at single spaces as MOUNT_LINE splits it; null when the line has fewer fields. */
function fifthField(text: string, start: number, end: number): string | null {
  let from = start;
  for (let field = 0; field < 4; field++) {
    const space = text.indexOf(' ', from);
    if (space === -1 || space >= end) return null;
    from = space + 1;
  }
  const space = text.indexOf(' ', from);
  return space === -1 || space >= end ? null : text.slice(from, space);
}

/** mountinfo escapes space, tab, newline and backslash as `\ooo`; most fields have none (every sync parses its container's table). */
function unescape(field: string): string {
  if (!field.includes('\\')) return field;
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mount a container has at `destination`: the first (dockerd's), not one stacked on it later. */
export function entryAt(table: readonly MountEntry[], destination: string): MountEntry | undefined {
  return table.find((entry) => entry.mountPoint === destination);
}

/**
 * Every host path where `entry`'s content is visible in the host's mount table: each host mount of
 * the same filesystem whose root holds the entry's root. A symlink swapped or a path the daemon
 * cannot see (another mount namespace's /tmp) makes no difference: the kernel's pair is compared.
 */
export function hostPathsOf(entry: MountEntry, host: readonly MountEntry[]): string[] {
  const paths = host
    .filter((h) => h.major === entry.major && h.minor === entry.minor && contains(h.root, entry.root))
    .map((h) => posix.join(h.mountPoint, h.root === '/' ? entry.root : entry.root.slice(h.root.length)));
  return [...new Set(paths.map((p) => posix.normalize(p).replace(/(.)\/$/, '$1')))];
}

/**
 * Where `path` (absolute, without symlinks) sits within its filesystem, by the mount of `table` that
 * holds it: the one at its longest mount point, the last of those (the one on top). Null when that
 * mount is not of device `dev` (stat(2)'s). The table does not say what covers what: a mount hidden
 * by a later one at a shorter mount point would be taken as the one reached.
 */
export function pathInFilesystem(table: readonly MountEntry[], path: string, dev: bigint): string | null {
  let holder: MountEntry | undefined;
  for (const entry of table) {
    if (contains(entry.mountPoint, path) && (holder === undefined || entry.mountPoint.length >= holder.mountPoint.length)) holder = entry;
  }
  if (holder === undefined || deviceNumber(holder.major, holder.minor) !== dev) return null;
  return posix.join(holder.root, posix.relative(holder.mountPoint, path));
}

/** A device number as stat(2) reports it (glibc's makedev), to compare with a file's `dev`. */
export function deviceNumber(major: number, minor: number): bigint {
  const M = BigInt(major);
  const m = BigInt(minor);
  return (m & 0xffn) | ((M & 0xfffn) << 8n) | ((m & ~0xffn) << 12n) | ((M & ~0xfffn) << 32n);
}

/** What a local volume's driver options (`type`, `o`, `device`) make dockerd mount. */
export type VolumeBacking =
  /** `o=bind`: the host path `device`. */
  | { readonly kind: 'bind'; readonly device: string }
  /** A block device (`type=ext4,device=/dev/sdb1`): the whole filesystem on it. */
  | { readonly kind: 'device'; readonly device: string }
  /** NFS, CIFS and the like: another machine's files, not a host path. */
  | { readonly kind: 'network'; readonly device: string };

const NETWORK_TYPES: ReadonlySet<string> = new Set(['nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'ceph', 'glusterfs', '9p', 'sshfs', 'fuse.sshfs']);

/** null for a plain volume (no options, or a tmpfs/overlay that mounts nothing of the host). */
export function volumeBacking(options: Readonly<Record<string, string>> | null | undefined): VolumeBacking | null {
  const type = options?.type ?? '';
  const device = options?.device ?? '';
  const flags = (options?.o ?? '').split(',');
  if (device === '') return null;
  if (flags.includes('bind') || flags.includes('rbind')) return { kind: 'bind', device };
  if (NETWORK_TYPES.has(type) || flags.some((f) => f.startsWith('addr='))) return { kind: 'network', device };
  return device.startsWith('/') ? { kind: 'device', device } : null;
}
