import { readFile } from 'node:fs/promises';

/** Whether SELinux labels mean anything on this host, and why, for the one start-up line. */
export interface SelinuxHost {
  readonly enabled: boolean;
  readonly reason: string;
}

/**
 * The check container tools make (go-selinux `GetEnabled`): selinuxfs is mounted read-write, and
 * this process runs under a real label (`/proc/self/attr/current` is not `kernel`).
 */
export async function detectSelinux(read: (path: string) => Promise<string> = (path) => readFile(path, 'utf8')): Promise<SelinuxHost> {
  const mountinfo = await read('/proc/self/mountinfo').catch(() => '');
  const mount = selinuxfsMount(mountinfo);
  if (mount === null) return { enabled: false, reason: 'selinuxfs is not mounted' };
  if (!mount.writable) return { enabled: false, reason: 'selinuxfs is mounted read-only' };
  const current = (await read('/proc/self/attr/current').catch(() => '')).replace(/\0/g, '').trim();
  if (current === '' || current === 'kernel') return { enabled: false, reason: 'this process has no SELinux label' };
  return { enabled: true, reason: `selinuxfs at ${mount.path}` };
}

/** The selinuxfs mount in `/proc/self/mountinfo` text: `id parent dev root mountpoint options [optional…] - fstype source superoptions`. */
export function selinuxfsMount(mountinfo: string): { readonly path: string; readonly writable: boolean } | null {
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields[dash + 1] !== 'selinuxfs') continue;
    return { path: unescapeMountPath(fields[4]!), writable: !fields[5]!.split(',').includes('ro') };
  }
  return null;
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
const unescapeMountPath = (path: string): string => path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
