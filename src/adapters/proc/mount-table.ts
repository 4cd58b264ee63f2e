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
 * The host's mount table: that of pid 1, whose namespace dockerd's mounts come from (not ours:
 * PrivateTmp). Shared by the callers that ask at once (fresh-read.ts): with 1,000 containers it has
 * ~2,500 mounts, and one read and parse took 70 ms at 900 (this 2-core machine, loaded).
 */
export const readHostMountTable = freshRead(async (): Promise<MountEntry[] | null> => {
  const [table] = await readProcFiles(['/proc/1/mountinfo']);
  return table == null ? null : parseMountInfo(table);
});
