import { readFileSync } from 'node:fs';
import { contains } from '../../domain/host-path.js';

export interface MountEntry {
  readonly mountPoint: string;
  readonly options: readonly string[];
  readonly fsType: string;
}

/** `/proc/self/mountinfo`: `id parent dev root mountpoint options [optional…] - fstype source superoptions`. */
export function parseMountinfo(text: string): MountEntry[] {
  return text.split('\n').flatMap((line) => {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6 || fields[dash + 1] === undefined) return [];
    return [{ mountPoint: unescapeMountPath(fields[4]!), options: fields[5]!.split(','), fsType: fields[dash + 1]! }];
  });
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
const unescapeMountPath = (path: string): string => path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/** Whether something is mounted strictly below `root` now (then every entry of a walk must be stat'ed for its device). */
export function hasMountsBelow(root: string, mountinfo = readMountinfo()): boolean {
  return parseMountinfo(mountinfo).some((m) => m.mountPoint !== root && contains(root, m.mountPoint));
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '/ / / / / rw - unknown unknown rw'; // unreadable: assume mounts anywhere, so stat everything
  }
}
