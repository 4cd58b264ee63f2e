import { readFileSync } from 'node:fs';
import { loadAddon } from '../native-addon.js';

/**
 * A procfs or cgroupfs file, or null when it cannot be read. These are made in memory when read and
 * never wait on a disk or a hung mount: read synchronously they cost microseconds, where an
 * asynchronous read is five thread-pool round trips (open, fstat, read, read, close); in a start-up
 * reconcile of 1,000 containers those took ~1.8 s of the event loop.
 */
export function readProcFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** A container's status or mountinfo is a few KiB; a host's mountinfo with thousands of mounts a few MiB. */
export const MAX_PROC_FILE_BYTES = 16 * 1024 * 1024;

interface Addon {
  readFiles(paths: readonly string[], maxBytes: number): Promise<Array<string | null>>;
}
let addon: Addon | null = null;

/**
 * procfs files read whole, one after the other in the order given (a cgroup file listed after a
 * status is read after it), on libuv's thread pool (native/procfs_read.c): the kernel's work of
 * making them is not the event loop's. Each is null when it cannot be read or holds more than
 * `maxBytes`. For the reads every sync makes of every running container (its processes' status, its
 * mount table): ~0.3 s of the event loop's CPU in a start-up reconcile of 1,000.
 *
 * The calls made in one turn of the event loop go to the thread pool as one job (each call's files
 * still in its own order, and each call's files after those of the calls made before it): handing a
 * job to a sleeping pool thread wakes it, which costs the event loop ~50–130 µs on this 2-core VM
 * (2,000 calls one after the other: 86–127 ms of CPU; the same files in one job: 34–37 ms), and a
 * reconcile's syncs make two such calls per container, several containers in a turn.
 */
export function readProcFiles(paths: readonly string[], maxBytes = MAX_PROC_FILE_BYTES): Promise<Array<string | null>> {
  // Refused here, as the addon would: in a shared job it would fail the other calls' reads too.
  if (paths.some((path) => path.includes('\0'))) throw new TypeError('readProcFiles: a path holds a NUL');
  if (pending !== null && (pending.maxBytes !== maxBytes || pending.paths.length + paths.length > MAX_JOB_FILES)) submit();
  const job = (pending ??= newJob(maxBytes));
  const from = job.paths.length;
  for (const path of paths) job.paths.push(path); // not a spread: a full read names every process of the host
  return job.done.then((files) => files.slice(from, from + paths.length));
}

/** A job's files at most: the first call's answer does not wait for thousands of others' files. */
const MAX_JOB_FILES = 512;

interface Job {
  readonly paths: string[];
  readonly maxBytes: number;
  readonly done: Promise<Array<string | null>>;
  /** Hands the job to the thread pool (its paths are final then). */
  readonly release: () => void;
}
let pending: Job | null = null;

function newJob(maxBytes: number): Job {
  const paths: string[] = [];
  let release!: () => void;
  // A failure to load the addon rejects each caller's read, not the process.
  const done = new Promise<void>((resolve) => (release = resolve)).then(() => (addon ??= loadAddon<Addon>('dw_procfs')).readFiles(paths, maxBytes));
  const job = { paths, maxBytes, done, release };
  setImmediate(() => {
    if (pending === job) submit();
  });
  return job;
}

function submit(): void {
  const job = pending!;
  pending = null;
  job.release();
}

/**
 * The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses), so
 * index 0 is field 3 (state), 1 the parent pid, 19 the start time; null when the process is gone.
 */
export function readProcStat(proc: string, pid: string): string[] | null {
  const stat = readProcFile(`${proc}/${pid}/stat`);
  return stat === null ? null : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
