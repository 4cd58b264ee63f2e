import { realpath, stat } from 'node:fs/promises';
import { deviceNumber, entryAt, hostPathsOf, parseMountInfo, pathInFilesystem, volumeBacking, type MountEntry, type VolumeBacking } from '../../domain/mount-map.js';
import type { PathProbe, ProbeResult } from '../fs/path-probe.js';
import { readProcFiles } from '../proc/proc-file.js';
import type { ContainerInspect } from './facts.js';

/**
 * What each of a container's mounts really is on the host, beyond the `Source` dockerd reports:
 * a local volume's driver options, the container's mount table mapped to host paths, and the
 * identity (device, inode) of the engine sockets. All lookups on container-named paths go through
 * the `PathProbe` (deadline, bounded), never through the daemon's own fs threads.
 */
export interface MountView {
  /** The source with symlinks resolved; the source itself when it could not be resolved. */
  readonly realSource: string;
  readonly hostPaths: readonly string[];
  readonly backing: VolumeBacking['kind'] | null;
  readonly device: string;
  readonly unresolved: string | null;
}

export interface MountSourcesInput {
  readonly inspect: ContainerInspect;
  /** Volume driver options by volume name (`GET /volumes/{name}`); null when the volume is gone. */
  readonly volumeOptions: (name: string) => Promise<Readonly<Record<string, string>> | null>;
  readonly probe: PathProbe;
  /**
   * The container's mount table and the host's (null: not running, or unreadable), read only for a
   * container that mounts a host path: the host's is long (two mounts per container) and costly to
   * read, and a reconcile would read it once per container. The host's was read since the container
   * started, or (`fresh`) begins after this call.
   */
  readonly tables: (fresh: boolean) => Promise<MountTables | null>;
  /** Engine socket paths recognised by identity. */
  readonly sockets: readonly string[];
}

/** Views by mount destination (host-path mounts only: bind and volume with an absolute source). */
export async function readMountViews(input: MountSourcesInput): Promise<Map<string, MountView>> {
  const mounts = (input.inspect.Mounts ?? []).filter((m) => (m.Type === 'bind' || m.Type === 'volume') && m.Source.startsWith('/'));
  // Most containers (and creates) mount no host path: the sockets are not stat'ed for nothing.
  if (mounts.length === 0) return new Map();
  const [sockets, tables] = await Promise.all([socketIdentities(input.sockets), tablesShowing(input.tables, mounts)]);
  const views = await Promise.all(mounts.map((m) => viewOf(m, input, tables, sockets)));
  return new Map(mounts.map((m, i) => [m.Destination, views[i]!]));
}

type InspectMount = NonNullable<ContainerInspect['Mounts']>[number];

/**
 * The tables, with the host's read afresh when it does not show a filesystem the container has at
 * one of `mounts`: one mounted after that read began (since the container started), or a host table
 * taken as recent across a step of the clock.
 */
async function tablesShowing(tables: MountSourcesInput['tables'], mounts: readonly InspectMount[]): Promise<MountTables | null> {
  const recent = await tables(false);
  if (recent === null) return null;
  const shown = (entry: MountEntry | undefined): boolean => entry === undefined || recent.host.some((h) => h.major === entry.major && h.minor === entry.minor);
  return mounts.every((m) => shown(entryAt(recent.container, m.Destination))) ? recent : tables(true);
}

interface MountTables {
  readonly container: readonly MountEntry[];
  readonly host: readonly MountEntry[];
}

async function viewOf(mount: InspectMount, input: MountSourcesInput, tables: MountTables | null, sockets: SocketIdentities): Promise<MountView> {
  const problems: string[] = [];
  const backing = mount.Type === 'volume' && (mount.Driver ?? 'local') === 'local' && mount.Name ? volumeBacking(await input.volumeOptions(mount.Name)) : null;
  const entry = tables && entryAt(tables.container, mount.Destination);
  const allMapped = entry ? mappedPaths(entry, tables!.host) : [];
  const [real, device] = await Promise.all([
    realSourceOf(mount, backing, allMapped, input.probe),
    backing === null || backing.kind === 'network' ? null : input.probe.realpath(backing.device),
  ]);
  const realSource = real.ok ? real.value : mount.Source;
  // Without the mount table the request is all there is: its paths must have resolved.
  if (!real.ok && !entry && real.reason === 'timeout') problems.push('the source did not resolve in time');
  const mapped = allMapped.filter((p) => backing === null || (p !== mount.Source && p !== realSource));
  // A device path the daemon cannot resolve (another namespace's /tmp) is told by the mount table, when there is one.
  if (device && !device.ok && !entry) problems.push(device.reason === 'timeout' ? "the volume's device did not resolve in time" : "the volume's device does not resolve");
  const devicePath = device?.ok ? device.value : backing?.kind === 'bind' && mapped[0] !== undefined ? mapped[0] : (backing?.device ?? '');

  // A volume whose options mount something is that something, not the `_data` directory it sits on.
  const requested = backing === null ? [realSource] : backing.kind === 'network' ? [] : [devicePath];
  const socketPaths = await socketsBehind(entry ?? null, entry ? mapped : real.ok ? [realSource] : [], sockets, input.probe, problems);
  return {
    realSource,
    hostPaths: [...new Set([...requested, ...mapped, ...socketPaths])].filter((p) => p !== ''),
    backing: backing?.kind ?? null,
    device: devicePath,
    unresolved: problems.length === 0 ? null : problems.join('; '),
  };
}

/**
 * The source with symlinks resolved. While the container runs, the host's mount table already holds
 * the real paths of what it mounts (the kernel resolved them at mount time): no lookup is needed,
 * which keeps the start path free of child processes. Otherwise, through the probe.
 */
async function realSourceOf(mount: InspectMount, backing: VolumeBacking | null, mapped: readonly string[], probe: PathProbe): Promise<ProbeResult> {
  if (mapped.includes(mount.Source)) return { ok: true, value: mount.Source };
  const first = mapped.find((p) => !p.startsWith('/dev/block/'));
  if (backing === null && first !== undefined) return { ok: true, value: first };
  return probe.realpath(mount.Source);
}

/** Host paths of a mount-table entry; a block device the host has not mounted anywhere is named by its device. */
function mappedPaths(entry: MountEntry, host: readonly MountEntry[]): string[] {
  const paths = hostPathsOf(entry, host);
  if (paths.length > 0 || entry.major === 0) return paths;
  return [`/dev/block/${entry.major}:${entry.minor}`];
}

interface EngineSocket {
  readonly path: string;
  /**
   * Its path within its filesystem when that is its only name (one link), else null: a mount of it
   * then has this root in the container's mount table, and a mount with another root is not it.
   */
  readonly root: string | null;
}

/** `dev` → (`ino` → the socket). */
type SocketIdentities = Map<bigint, Map<bigint, EngineSocket>>;

async function socketIdentities(paths: readonly string[]): Promise<SocketIdentities> {
  const identities: SocketIdentities = new Map();
  // The configured socket paths are the admin's, not a container's: a plain stat (following a link to the socket).
  const stats = await Promise.all(paths.map((p) => stat(p, { bigint: true }).catch(() => null)));
  const roots = await Promise.all(stats.map((s, i) => (s?.isSocket() && s.nlink === 1n ? rootOf(paths[i]!, s.dev, s.ino) : null)));
  stats.forEach((s, i) => {
    if (!s?.isSocket()) return;
    const byIno = identities.get(s.dev) ?? new Map<bigint, EngineSocket>();
    if (!byIno.has(s.ino)) byIno.set(s.ino, { path: paths[i]!, root: roots[i] ?? null });
    identities.set(s.dev, byIno);
  });
  return identities;
}

/** Socket roots by `dev:ino:path`: found once (the daemon's own mount table), not at every sync. */
const roots = new Map<string, Promise<string | null>>();
const MAX_ROOTS = 64;

/**
 * A socket's path within its filesystem: its real path placed by the daemon's own mount table (its
 * namespace is the one the configured path was looked up in; a systemd PrivateTmp shows there).
 */
function rootOf(path: string, dev: bigint, ino: bigint): Promise<string | null> {
  const key = `${dev}:${ino}:${path}`;
  let root = roots.get(key);
  if (root === undefined) {
    if (roots.size >= MAX_ROOTS) roots.clear();
    root = (async () => {
      const [real, [table]] = await Promise.all([realpath(path), readProcFiles(['/proc/self/mountinfo'])]);
      return table == null ? null : pathInFilesystem(parseMountInfo(table), real, dev);
    })().catch(() => null);
    roots.set(key, root);
  }
  return root;
}

/**
 * The socket paths a mount is, by identity: a hard link or any other path to the socket has the
 * socket's device and inode. Only mounts on a socket's filesystem are looked at; one whose identity
 * cannot be read (a path the daemon cannot see) is unresolved, not cleared. A mount-table entry on
 * the filesystem of sockets that each have one name is told by its root, without a lookup (a child
 * process each: at 1,000 containers bind-mounting from the sockets' filesystem, most of a start-up
 * reconcile's time); one whose root was deleted (`//deleted`) is looked up.
 */
async function socketsBehind(entry: MountEntry | null, paths: readonly string[], sockets: SocketIdentities, probe: PathProbe, problems: string[]): Promise<string[]> {
  if (sockets.size === 0) return [];
  const here = entry && sockets.get(deviceNumber(entry.major, entry.minor));
  if (entry && here === undefined) return [];
  const onDevice = here ? [...here.values()] : [];
  if (entry && !entry.root.endsWith('//deleted') && onDevice.every((s) => s.root !== null)) return onDevice.filter((s) => s.root === entry.root).map((s) => s.path);
  const found: string[] = [];
  let known = false;
  for (const path of paths) {
    const identity = await probe.identity(path);
    if (!identity.ok) continue;
    const [dev, ino] = identity.value.split(':').map(BigInt) as [bigint, bigint];
    if (entry && dev !== deviceNumber(entry.major, entry.minor)) continue;
    known = true;
    const socket = sockets.get(dev)?.get(ino);
    if (socket !== undefined) found.push(socket.path);
  }
  if (!known && entry) problems.push('whether it is the engine socket could not be told');
  return found;
}
