import { readFileSync } from 'node:fs';
import { contains } from '../../domain/host-path.js';
import { parseMountInfo } from '../../domain/mount-map.js';

/** Whether something is mounted strictly below `root` now (then every entry of a walk must be stat'ed for its device). */
export function hasMountsBelow(root: string, mountinfo = readMountinfo()): boolean {
  return parseMountInfo(mountinfo).some((m) => m.mountPoint !== root && contains(root, m.mountPoint));
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '0 0 0:0 / / rw - unknown unknown rw'; // unreadable: assume mounts anywhere, so stat everything
  }
}
