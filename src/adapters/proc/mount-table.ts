import { open } from 'node:fs/promises';
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
  const table = await readBounded(`/proc/${pid}/mountinfo`);
  const cgroup = table === null ? null : await readBounded(`/proc/${pid}/cgroup`);
  return table !== null && cgroup?.includes(containerId) ? parseMountInfo(table) : null;
}

/**
 * The host's mount table: that of pid 1, whose namespace dockerd's mounts come from (not ours:
 * PrivateTmp). Shared by the callers that ask at once (fresh-read.ts): with 1,000 containers it has
 * ~2,500 mounts, and one read and parse took 70 ms at 900 (this 2-core machine, loaded).
 */
export const readHostMountTable = freshRead(async (): Promise<MountEntry[] | null> => {
  const table = await readBounded('/proc/1/mountinfo');
  return table === null ? null : parseMountInfo(table);
});

/** A container's mountinfo is a few KiB: one read of this size takes it whole. */
const CHUNK_BYTES = 64 * 1024;

/**
 * procfs reports size 0: read in chunks up to the bound; null when unreadable or too large. One
 * buffer, not zeroed (only the bytes read are kept, copied): a zeroed 256 KiB buffer per read cost
 * ~4 ms of CPU per container in a start-up reconcile (two files, two reads each).
 */
async function readBounded(path: string): Promise<string | null> {
  let file;
  try {
    file = await open(path, 'r');
    const chunks: Buffer[] = [];
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    let total = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_BYTES) return null;
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch {
    return null;
  } finally {
    await file?.close();
  }
}
