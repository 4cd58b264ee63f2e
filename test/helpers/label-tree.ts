import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLabel } from '../../src/adapters/selinux/native.js';

/**
 * Scratch trees for the relabel tests, on the machine's ext4 under /var/tmp (whose security.selinux
 * xattr can be written although the kernel has no SELinux). Not /tmp: that is a refused path.
 */
export function scratchRoot(): string {
  return mkdtempSync('/var/tmp/dw-sel-');
}

/** `dirs` directories of `filesPerDir` files each, below `root`; returns how many entries were made. */
export function makeTree(root: string, dirs: number, filesPerDir: number): number {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < filesPerDir; f++) writeFileSync(join(dir, `f${f}`), '');
  }
  return dirs * (filesPerDir + 1);
}

/** Every entry below `root` (not following symlinks) with its own label. */
export function labelsBelow(root: string): Map<string, string | null> {
  const labels = new Map<string, string | null>([[root, readLabel(root)]]);
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: false }) as string[]) {
    const path = join(root, entry);
    labels.set(path, readLabel(path));
  }
  return labels;
}

/** Mounts a filesystem of `type` (ramfs: no xattrs at all) at `dir`; returns its unmount. */
export function mountFs(type: 'ramfs' | 'tmpfs', dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', type, 'none', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** A bind mount of `source` (a file or directory) onto the existing `target`; returns its unmount. */
export function bindMount(source: string, target: string): () => void {
  execFileSync('mount', ['--bind', source, target]);
  return () => execFileSync('umount', ['-l', target]);
}

/** A read-only bind mount of `source` at `dir` (writes fail with EROFS); returns its unmount. */
export function bindReadOnly(source: string, dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['--bind', source, dir]);
  execFileSync('mount', ['-o', 'remount,bind,ro', dir]);
  return () => execFileSync('umount', ['-l', dir]);
}

/** Removes `paths` in a child process, so it runs while this process's walk does. */
export function removeInBackground(...paths: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    spawn('rm', ['-rf', '--', ...paths], { stdio: 'ignore' }).once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rm exited ${code}`))));
  });
}
