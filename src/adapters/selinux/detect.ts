import { readFile } from 'node:fs/promises';
import { parseMountInfo } from '../../domain/mount-map.js';

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

/** The selinuxfs mount in `/proc/self/mountinfo` text, and whether it is read-write. */
export function selinuxfsMount(mountinfo: string): { readonly path: string; readonly writable: boolean } | null {
  // The fstype follows the separator: a host without selinuxfs (most) is told without parsing every
  // mount, thousands on a host with as many containers.
  if (!mountinfo.includes(' - selinuxfs ')) return null;
  const mount = parseMountInfo(mountinfo).find((m) => m.fstype === 'selinuxfs');
  return mount ? { path: mount.mountPoint, writable: !mount.options.includes('ro') } : null;
}
