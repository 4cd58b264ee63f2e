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
 * status is read after it), on libuv's thread pool in one job (native/procfs_read.c): the kernel's
 * work of making them is not the event loop's. Each is null when it cannot be read or holds more
 * than `maxBytes`. For the reads every sync makes of every running container (its processes'
 * status, its mount table): ~0.3 s of the event loop's CPU in a start-up reconcile of 1,000.
 */
export function readProcFiles(paths: readonly string[], maxBytes = MAX_PROC_FILE_BYTES): Promise<Array<string | null>> {
  return (addon ??= loadAddon<Addon>('dw_procfs')).readFiles(paths, maxBytes);
}

/**
 * The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses), so
 * index 0 is field 3 (state), 1 the parent pid, 19 the start time; null when the process is gone.
 */
export function readProcStat(proc: string, pid: string): string[] | null {
  const stat = readProcFile(`${proc}/${pid}/stat`);
  return stat === null ? null : stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
