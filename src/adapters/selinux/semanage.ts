import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { isToolError, runTool } from '../firewall/run-tool.js';

const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** `semanage` on PATH or in the system dirs; null where policycoreutils is not installed. */
export function findSemanage(path = process.env.PATH ?? ''): string | null {
  for (const dir of [...path.split(delimiter).filter((d) => d.startsWith('/')), ...SYSTEM_DIRS]) {
    const file = join(dir, 'semanage');
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/** `/srv/a.b` → `/srv/a\.b(/.*)?`: the fcontext spec of a directory and everything below it. */
export function fcontextSpec(path: string): string {
  return `${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(/.*)?`;
}

/** `semanage fcontext -a|-m -t TYPE -r LEVEL SPEC`, by argument array. */
export function fcontextArgs(op: 'add' | 'modify', path: string, typeLevel: string): string[] {
  const [type, ...level] = typeLevel.split(':');
  return ['fcontext', op === 'add' ? '-a' : '-m', '-t', type!, '-r', level.join(':'), fcontextSpec(path)];
}

/**
 * Registers the label of `path` (and below) in the local file-context policy, so a full relabel
 * (`restorecon -R`, `fixfiles`, an autorelabel at boot) keeps it. An existing rule is modified.
 */
export async function registerFcontext(semanage: string, path: string, typeLevel: string): Promise<void> {
  try {
    await runTool([semanage, ...fcontextArgs('add', path, typeLevel)], '', undefined);
  } catch (failure) {
    if (!isToolError(failure) || !/already defined/i.test(failure.stderr)) throw failure;
    await runTool([semanage, ...fcontextArgs('modify', path, typeLevel)], '', undefined);
  }
}
