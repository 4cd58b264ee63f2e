import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface PolicyFileWatch {
  close(): void;
}

/**
 * Calls `changed` when the policy file may have changed. The file is watched in its directory, not
 * by itself: editors and config management replace a file rather than write it, and a watch on the
 * old inode would hear nothing more. When the path is a symlink (a policy kept in a checkout and
 * linked into /etc/dockwarden), the file it resolves to is watched in its own directory too: saving
 * it changes nothing in the link's directory, and the edit would otherwise wait for a SIGHUP while
 * the admin believes it in force. After every event the link is followed again, as it may have been
 * pointed elsewhere. Throws when the path's own directory cannot be watched; `failed` hears a watch
 * that fails later (from then on only a SIGHUP reloads).
 */
export function watchPolicyFile(file: string, changed: () => void, failed: (error: Error) => void): PolicyFileWatch {
  let target: { readonly path: string; readonly watcher: FSWatcher } | null = null;
  let closed = false;

  const watchEntry = (path: string): FSWatcher =>
    watch(dirname(path), (_, name) => {
      if (closed || name !== basename(path)) return;
      changed();
      follow();
    }).on('error', failed);

  /** (Re)watches what the path resolves to, when that is another file than the path itself. */
  const follow = (): void => {
    const resolved = resolvedTarget(file);
    if (resolved === (target?.path ?? null)) return;
    target?.watcher.close();
    target = null;
    if (resolved === null) return;
    try {
      target = { path: resolved, watcher: watchEntry(resolved) };
    } catch {
      // The target's directory cannot be watched (gone meanwhile, or not readable): a SIGHUP still
      // reloads, and the next event tries again.
    }
  };

  const own = watchEntry(file);
  follow();
  return {
    close() {
      closed = true;
      own.close();
      target?.watcher.close();
    },
  };
}

/** Where the path resolves to when that is another file; null for a plain file, or a dangling or missing path. */
function resolvedTarget(file: string): string | null {
  try {
    const real = realpathSync(file);
    return real === file ? null : real;
  } catch {
    return null;
  }
}
