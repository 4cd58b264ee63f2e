import { parseMountInfo, type MountEntry } from '../../domain/mount-map.js';
import { freshRead } from '../fresh-read.js';
import { readProcFiles } from './proc-file.js';

/**
 * Mount tables from procfs. `/proc/<pid>/mountinfo` is readable without CAP_SYS_PTRACE (unlike
 * `/proc/<pid>/root`), and reading it asks no filesystem anything: a hung mount cannot block it.
 * A host with thousands of mounts has a mountinfo of a few MiB; beyond 16 MiB it is not read.
 */

/**
 * The mount table of a container's init process (`at`: its entries at these mount points only,
 * `parseMountInfo`); null when it is gone. The pid may have been reused since the inspect: its
 * cgroup file, read after the table, must name the container.
 */
export async function readContainerMountTable(pid: number, containerId: string, at?: ReadonlySet<string>): Promise<MountEntry[] | null> {
  const [table, cgroup] = await readProcFiles([`/proc/${pid}/mountinfo`, `/proc/${pid}/cgroup`]);
  return table != null && cgroup?.includes(containerId) ? parseMountInfo(table, at) : null;
}

/**
 * How long a host table read after a container started may serve its sync (`readHostMountTable(startedAt)`).
 * Each read was a fresh one: at 1,000 containers the table has ~2,400 mounts (730 KB, 24 ms of the
 * kernel's to make) and its parse held the event loop tens of ms before TurboFan, so a start-up
 * reconcile of 1,200 containers, 200 of them with a bind mount, read it ~50 times one after the
 * other and took 4.7 s, where the 1,000 without a bind took 1.2 s.
 */
const HOST_TABLE_REUSE_MS = 2_000;

/**
 * The host's mount table: that of pid 1, whose namespace dockerd's mounts come from (not ours:
 * PrivateTmp). Shared by the callers that ask at once (fresh-read.ts). `startedAfter` (wall-clock ms):
 * a read begun after it will do (the last one, at most HOST_TABLE_REUSE_MS old); without it, one
 * begun after the call. A container's own mounts are made before it starts, and the filesystems they
 * show stay mounted while it holds them, so any table read since shows them, with the device
 * numbers they have now.
 */
export const readHostMountTable = freshRead(
  async (): Promise<MountEntry[] | null> => {
    const [table] = await readProcFiles(['/proc/1/mountinfo']);
    return table == null ? null : parseMountInfo(table);
  },
  { reuseWithinMs: HOST_TABLE_REUSE_MS },
);
