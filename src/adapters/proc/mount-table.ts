import { closeSync, openSync, readSync } from 'node:fs';
import { parseMountInfo, type MountEntry } from '../../domain/mount-map.js';
import { freshRead } from '../fresh-read.js';

/**
 * Mount tables from procfs. `/proc/<pid>/mountinfo` is readable without CAP_SYS_PTRACE (unlike
 * `/proc/<pid>/root`), and reading it asks no filesystem anything: a hung mount cannot block it.
 */

/** A host with thousands of mounts has a mountinfo of a few MiB; beyond this it is not read. */
const MAX_BYTES = 16 * 1024 * 1024;

/**
 * The mount table of a container's init process; null when it is gone. The pid may have been
 * reused since the inspect: its cgroup file, read after the table, must name the container.
 */
export async function readContainerMountTable(pid: number, containerId: string): Promise<MountEntry[] | null> {
  const table = readBounded(`/proc/${pid}/mountinfo`);
  const cgroup = table === null ? null : readBounded(`/proc/${pid}/cgroup`);
  return table !== null && cgroup?.includes(containerId) ? parseMountInfo(table) : null;
}

/**
 * The host's mount table: that of pid 1, whose namespace dockerd's mounts come from (not ours:
 * PrivateTmp). Shared by the callers that ask at once (fresh-read.ts): with 1,000 containers it has
 * ~2,500 mounts, and one read and parse took 70 ms at 900 (this 2-core machine, loaded).
 */
export const readHostMountTable = freshRead(async (): Promise<MountEntry[] | null> => {
  const table = readBounded('/proc/1/mountinfo');
  return table === null ? null : parseMountInfo(table);
});

/** A container's mountinfo is a few KiB: one read of this size takes it whole. */
const CHUNK_BYTES = 64 * 1024;
/** The one read buffer: reads are synchronous, so never two at once. */
const chunk = Buffer.allocUnsafe(CHUNK_BYTES);

/**
 * procfs reports size 0: read in chunks up to the bound; null when unreadable or too large.
 * Synchronously, as `readProcFile` (container-processes.ts) and for its reason: these files are made in
 * memory when read and wait on no disk or mount, and an asynchronous read is four thread-pool round
 * trips (open, read, read, close): ~1.5 s of the event loop in a start-up reconcile of 1,000 containers
 * (profile). Into one buffer kept for every read, copied out only when a table outgrows it.
 */
function readBounded(path: string): string | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const full: Buffer[] = [];
    let used = 0;
    let total = 0;
    for (;;) {
      if (used === CHUNK_BYTES) {
        full.push(Buffer.from(chunk));
        used = 0;
      }
      const bytesRead = readSync(fd, chunk, used, CHUNK_BYTES - used, null);
      if (bytesRead === 0) break;
      used += bytesRead;
      total += bytesRead;
      if (total > MAX_BYTES) return null;
    }
    const last = chunk.subarray(0, used);
    return (full.length === 0 ? last : Buffer.concat([...full, last])).toString('utf8');
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
