import type { Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * A fresh Debian 12 root for package and deployment tests, made by Debian's own tool:
 * `mmdebstrap --variant=minbase --include=python3,python3-apt bookworm` (Ansible's modules run with
 * it). Made once (~1 min) and cached as a tarball; each test extracts its own copy (~5 s), so a
 * test never sees what another left. The apt lists are kept in the tarball; tests that install
 * from the archive still run `apt-get update` first, since a cached list can name superseded .debs.
 */
export const ROOT_TARBALL = process.env.DW_TEST_DEBIAN_ROOT ?? '/var/cache/dockwarden-test/bookworm-minbase-ansible.tar';
const ROOT_PACKAGES = ['python3', 'python3-apt'];
const CACHE = '/var/cache/dockwarden-test';
const SOURCES = '/etc/apt/sources.list.d/debian.sources';
const MMDEBSTRAP_TIMEOUT_MS = 10 * 60_000;
const COMMAND_TIMEOUT_MS = 10 * 60_000;
const LOCK_HELD = 75;

export interface Run {
  readonly code: number;
  readonly stdout: string;
  /** stdout and stderr, for messages */
  readonly out: string;
}

export interface DebianRoot {
  readonly dir: string;
  /** Runs `argv` inside the root (chroot), stdin closed, bounded; output is stdout + stderr. */
  run(argv: readonly string[], env?: NodeJS.ProcessEnv): Run;
  /** The host path of a path inside the root. */
  path(inside: string): string;
}

export function run(file: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeout = COMMAND_TIMEOUT_MS): Run {
  const r = spawnSync(file, args, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

/**
 * The cached tarball of a minbase root with `include` added, made on first use: named by a hash of
 * the package list, so a changed list makes a new root instead of reusing a stale one.
 */
export function rootTarball(include: readonly string[]): string {
  const key = createHash('sha256').update([...include].sort().join(',')).digest('hex').slice(0, 12);
  const tarball = join(CACHE, `bookworm-minbase-${key}.tar`);
  ensureTarball(tarball, include);
  return tarball;
}

function ensureTarball(tarball: string, include: readonly string[]): void {
  if (existsSync(tarball)) return;
  mkdirSync(dirname(tarball), { recursive: true });
  const partial = `${tarball}.${process.pid}.partial.tar`;
  const mirror = existsSync(SOURCES) ? [SOURCES] : [];
  // One maker at a time (the system tests run in parallel): a test that finds the lock held waits
  // for the other's tarball instead of making a second one.
  const lock = `${tarball}.lock`;
  const mmdebstrap = ['mmdebstrap', '--quiet', '--variant=minbase', `--include=${include.join(',')}`, '--skip=cleanup/apt/lists', 'bookworm', partial, ...mirror];
  const made = run('flock', ['--nonblock', '--conflict-exit-code', String(LOCK_HELD), lock, ...mmdebstrap], process.env, MMDEBSTRAP_TIMEOUT_MS);
  if (made.code === LOCK_HELD) {
    run('flock', ['--timeout', String(MMDEBSTRAP_TIMEOUT_MS / 1000), lock, 'true'], process.env, MMDEBSTRAP_TIMEOUT_MS + 5000);
    if (existsSync(tarball)) return;
    throw new Error(`another test held ${lock} but made no ${tarball}`);
  }
  if (made.code !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`mmdebstrap failed (${made.code}): ${made.out.slice(-2000)}`);
  }
  renameSync(partial, tarball); // atomic: a concurrent or interrupted run never sees half a tarball
}

/** `tarball` extracted into a new directory under /var/tmp; `cleanup` runs, then it is deleted, at teardown. */
export function extractRoot(t: Test, tarball: string, cleanup: (dir: string) => unknown = () => {}): string {
  const dir = mkdtempSync('/var/tmp/dw-debroot-');
  t.teardown(async () => {
    await cleanup(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  const untar = run('tar', ['-xf', tarball, '-C', dir]);
  if (untar.code !== 0) throw new Error(`extracting ${tarball}: ${untar.out}`);
  return dir;
}

/** A fresh root with /proc mounted and the host's resolver; unmounted and deleted at teardown. */
export function debianRoot(t: Test): DebianRoot {
  ensureTarball(ROOT_TARBALL, ROOT_PACKAGES);
  const dir = extractRoot(t, ROOT_TARBALL, (d) => run('umount', ['-l', join(d, 'proc')]));
  const proc = join(dir, 'proc');
  copyFileSync('/etc/resolv.conf', join(dir, 'etc/resolv.conf'));
  const mounted = run('mount', ['-t', 'proc', 'proc', proc]);
  if (mounted.code !== 0) throw new Error(`mount proc: ${mounted.out}`);
  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive', HOME: '/root' };
  return {
    dir,
    // env -u: the test runner injects NODE_OPTIONS (its loader, a host path) into every child's environment
    run: (argv, extra = {}) => run('chroot', [dir, 'env', '-u', 'NODE_OPTIONS', ...argv], { ...env, ...extra }),
    path: (inside) => join(dir, inside),
  };
}

/** Every path below `dir` (relative, with a leading /), not descending into the `skip` prefixes. */
export function paths(dir: string, skip: readonly string[]): Set<string> {
  const out = new Set<string>();
  const walk = (abs: string, rel: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      const p = `${rel}/${entry.name}`;
      if (skip.some((s) => p === s || p.startsWith(`${s}/`))) continue;
      out.add(p);
      if (entry.isDirectory() && !lstatSync(join(abs, entry.name)).isSymbolicLink()) walk(join(abs, entry.name), p);
    }
  };
  walk(dir, '');
  return out;
}
