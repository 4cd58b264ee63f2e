import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readProcFiles } from '../proc/proc-file.js';

/**
 * Every process of a running container, found through its cgroup: a privileged exec's background
 * child outlives the exec (and leaves `ExecIDs`) with all its capabilities, and only its own
 * `/proc/<pid>/status` says so. Reading is bounded (a container decides how many processes it has).
 */

/** A cgroup hierarchy mounted in the daemon's mount namespace. */
export interface CgroupMount {
  /** `null` for the unified (v2) hierarchy; else the v1 controllers (`cpu`, `name=systemd`, …). */
  readonly controllers: readonly string[] | null;
  /** The directory in that hierarchy which is mounted (`/` on the host). */
  readonly root: string;
  readonly mountPoint: string;
}

export interface ProcessLimits {
  /** Processes read at most; the rest are counted as unread. */
  readonly maxProcesses: number;
  /** Cgroup directories (the container's and those below it) walked at most. */
  readonly maxCgroups: number;
}

export const DEFAULT_PROCESS_LIMITS: ProcessLimits = { maxProcesses: 1024, maxCgroups: 256 };

export interface ContainerProcesses {
  readonly processes: Array<{ readonly pid: number; readonly status: string }>;
  readonly unread: number;
}

/** Cgroup mounts from `/proc/self/mountinfo` text (`id parent dev root mountpoint opts [tags] - fstype source superopts`). */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    // A host's table holds a few mounts per container and a dozen cgroup hierarchies: the rest is passed over unparsed.
    if (!line.includes(' - cgroup')) continue;
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOptions = ''] = right.split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    if (fstype === 'cgroup2') mounts.push({ controllers: null, root: unescapeMountPath(root), mountPoint: unescapeMountPath(mountPoint) });
    else if (fstype === 'cgroup') mounts.push({ controllers: superOptions.split(','), root: unescapeMountPath(root), mountPoint: unescapeMountPath(mountPoint) });
  }
  return mounts;
}

/** mountinfo writes space, tab, newline and backslash in paths as `\ooo`. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The directory of the container's cgroup, from its init's `/proc/<pid>/cgroup` (`id:controllers:path`
 * lines): the unified hierarchy when its path names the container (cgroup v2, or a hybrid host where
 * the runtime placed it there too), else the first v1 hierarchy whose path does. Null when no mounted
 * hierarchy holds it.
 */
export function cgroupDirectory(procCgroup: string, mounts: readonly CgroupMount[], containerId: string): string | null {
  // Every process of every running container is looked up at each sync: a line not naming the
  // container is passed over before it is parsed (on a v1 host, 10–13 lines a process).
  const lines = procCgroup
    .split('\n')
    .filter((line) => line.includes(containerId))
    .map((line) => /^(\d+):([^:]*):(.*)$/.exec(line))
    .filter((m) => m !== null)
    .map(([, , controllers = '', path = '']) => ({ controllers: controllers === '' ? null : controllers.split(','), path }))
    .filter((l) => l.path.includes(containerId));
  // The unified line first: on v2 it is the only one; on a hybrid host v1 is the fallback.
  lines.sort((a, b) => Number(a.controllers !== null) - Number(b.controllers !== null));
  for (const { controllers, path } of lines) {
    const mount = mounts.find((m) =>
      controllers === null ? m.controllers === null : m.controllers !== null && controllers.every((c) => m.controllers!.includes(c)),
    );
    if (!mount) continue;
    const root = mount.root === '/' ? '' : mount.root;
    if (root !== '' && path !== root && !path.startsWith(`${root}/`)) continue;
    return join(mount.mountPoint, path.slice(root.length));
  }
  return null;
}

let cgroupMounts: Promise<CgroupMount[]> | null = null;

/**
 * The daemon's cgroup mounts, read once (they are set up at boot); read again when none matched. In one
 * thread-pool job: the host's table holds a few mounts per container (600 KB at 1,000), which
 * `readFile` reads in 64 KiB steps, each waiting for a turn of the event loop; the first syncs of a
 * start-up reconcile waited ~0.1 s for it while the loop parsed the container list.
 */
function daemonCgroupMounts(reread: boolean): Promise<CgroupMount[]> {
  if (reread || cgroupMounts === null) cgroupMounts = readProcFiles(['/proc/self/mountinfo']).then(([table]) => parseCgroupMounts(table ?? ''), () => []);
  return cgroupMounts;
}

/**
 * Reads the daemon's cgroup mounts now, before the first container is looked at: the daemon's set-up
 * asks, so that a start-up reconcile's first syncs do not wait for the host's mount table (40–50 ms at
 * 1,000 containers, read while dockerd builds the container list and the thread pool reads every
 * process's name).
 */
export function primeCgroupMounts(): Promise<void> {
  return daemonCgroupMounts(false).then(() => {});
}

/**
 * Where the last container's cgroup was, around its id (`/sys/fs/cgroup/pids/docker/` and ``, or
 * `/sys/fs/cgroup/system.slice/docker-` and `.scope`): the next one's is most likely in the same place,
 * so its files are read in the same thread-pool job as the init's (each job costs a sync a turn of the
 * event loop and a pool thread's wake-up; three in a row were most of a sync's time in a start-up
 * reconcile). Used only when the init's cgroup file then names that directory.
 */
let layout: { readonly before: string; readonly after: string } | null = null;

function learnLayout(directory: string, containerId: string): void {
  const at = directory.indexOf(containerId);
  layout = at !== -1 && directory.indexOf(containerId, at + 1) === -1 ? { before: directory.slice(0, at), after: directory.slice(at + containerId.length) } : null;
}

/**
 * The status of each process in the container's cgroup and the cgroups below it. A pid may have
 * exited and been reused between the listing and the read: a process counts only if its cgroup file,
 * read after its status, still names the container. Empty when the init's cgroup cannot be found.
 * The init's status and cgroup file are read first (that cgroup file says where the cgroup is), with
 * the cgroup's files where the last container's was; a container whose only process is its init
 * takes one job.
 */
export async function readContainerProcesses(initPid: number, containerId: string, limits: ProcessLimits = DEFAULT_PROCESS_LIMITS): Promise<ContainerProcesses> {
  const guess = layout && `${layout.before}${containerId}${layout.after}`;
  const [initStatus, procCgroup, ...guessed] = await readProcFiles([...statusThenCgroup(initPid), ...(guess ? cgroupFiles(guess) : [])]);
  if (procCgroup == null) return { processes: [], unread: 0 };
  const directory =
    cgroupDirectory(procCgroup, await daemonCgroupMounts(false), containerId) ?? cgroupDirectory(procCgroup, await daemonCgroupMounts(true), containerId);
  if (directory === null) return { processes: [], unread: 0 };
  learnLayout(directory, containerId);
  const pids = await listPids(directory, limits.maxCgroups, directory === guess ? guessed : null);
  const toRead = pids.slice(0, limits.maxProcesses);
  const others = toRead.filter((pid) => pid !== initPid);
  // One thread-pool job for the others: each status, then its cgroup file.
  const read = others.length === 0 ? [] : await readProcFiles(others.flatMap(statusThenCgroup));
  const statuses = new Map(others.map((pid, i) => [pid, inContainer(read[2 * i], read[2 * i + 1], containerId)]));
  statuses.set(initPid, inContainer(initStatus, procCgroup, containerId));
  return {
    processes: toRead.flatMap((pid) => {
      const status = statuses.get(pid) ?? null;
      return status === null ? [] : [{ pid, status }];
    }),
    unread: pids.length - toRead.length,
  };
}

/** A cgroup directory's processes and (v2) its counts, the files `listPids` reads of each. */
const cgroupFiles = (dir: string): string[] => [`${dir}/cgroup.procs`, `${dir}/cgroup.stat`];

/**
 * Pids in `directory`'s `cgroup.procs` and in those of its subdirectories, breadth first, distinct.
 * A directory is listed only when it may have cgroups below it: on cgroup v2 its `cgroup.stat` counts
 * them (`nr_descendants`), and a container's cgroup almost never has any; v1 has no such file.
 * `read`: `directory`'s own files, when they have been read already.
 */
async function listPids(directory: string, maxCgroups: number, read: ReadonlyArray<string | null> | null): Promise<number[]> {
  const pids = new Set<number>();
  const queue = [directory];
  for (let walked = 0; walked < queue.length; walked++) {
    const dir = queue[walked]!;
    // `dir` is a clean path (cgroupDirectory's, or a name read from it): no join needed.
    const [procs, stat] = walked === 0 && read !== null ? read : await readProcFiles(cgroupFiles(dir));
    for (const word of (procs ?? '').split('\n')) if (/^[1-9][0-9]{0,9}$/.test(word)) pids.add(Number(word));
    if (stat != null && /^nr_descendants 0$/m.test(stat)) continue;
    for (const entry of cgroupEntries(dir)) if (entry.isDirectory() && queue.length < maxCgroups) queue.push(`${dir}/${entry.name}`);
  }
  return [...pids];
}

function cgroupEntries(dir: string) {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/**
 * `/proc/<pid>/status`, or null when the process is gone or is not the container's. The pid may have
 * been reused since it was listed: the cgroup file, read after the status, must name the container.
 */
export async function readStatusInContainer(pid: number, containerId: string): Promise<string | null> {
  const [status, cgroup] = await readProcFiles(statusThenCgroup(pid));
  return inContainer(status, cgroup, containerId);
}

/** A process's status and, read after it, its cgroup file. */
const statusThenCgroup = (pid: number): string[] => [`/proc/${pid}/status`, `/proc/${pid}/cgroup`];

/** The status, when the cgroup file read after it names the container. */
function inContainer(status: string | null | undefined, cgroup: string | null | undefined, containerId: string): string | null {
  return status != null && cgroup?.includes(containerId) ? status : null;
}
