/**
 * procfs read on libuv's thread pool (native/procfs_read.c, readProcFiles) and the readers built on
 * it, against this machine's real /proc: what they give is what a synchronous read gives, in the
 * order asked, with the pid-reuse guard (the cgroup file read after the content must name the container).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { readContainerProcesses, readStatusInContainer } from '../../src/adapters/docker/container-processes.js';
import { readContainerMountTable, readHostMountTable } from '../../src/adapters/proc/mount-table.js';
import { readProcFiles } from '../../src/adapters/proc/proc-file.js';
import { parseMountInfo } from '../../src/domain/mount-map.js';

/** A word of this process's own cgroup file, standing in for a container id (the guard looks for it there). */
const ownCgroupWord = (): string => {
  const paths = readFileSync('/proc/self/cgroup', 'utf8').split('\n').map((l) => l.split(':')[2] ?? '');
  return paths.find((p) => p.length > 1) ?? ':';
};

t.test('files read whole, in the order given, as a synchronous read gives them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-procfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Larger than the first read (8 KiB), with multi-byte characters across the read boundaries.
  const big = join(dir, 'big');
  writeFileSync(big, 'ä€𝄞 line\n'.repeat(20_000));
  const paths = ['/proc/self/mountinfo', big, '/proc/self/cgroup', '/proc/1/cmdline'];
  const read = await readProcFiles(paths);
  t.same(read, paths.map((p) => readFileSync(p, 'utf8')));
});

t.test('null for a file that cannot be read or is over the bound; the others still read', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-procfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ten'), '0123456789');
  t.same(await readProcFiles(['/proc/nonexistent/status', dir, join(dir, 'ten'), '/proc/self/cgroup'], 10), [null, null, '0123456789', null]);
  t.same(await readProcFiles([join(dir, 'ten')], 9), [null], 'one byte over');
  t.same(await readProcFiles([]), []);
  t.throws(() => readProcFiles(['/proc/self/status\0x']), TypeError, 'a NUL would cut the path short');
});

t.test('calls made at once each get their own files, with their own bound', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-procfs-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const files = Array.from({ length: 600 }, (_, i) => join(dir, String(i)));
  files.forEach((f, i) => writeFileSync(f, 'x'.repeat(i % 20)));
  // More than one job's worth (512), calls of different sizes and bounds, a file unreadable in between.
  const calls = Array.from({ length: 120 }, (_, i) => ({ paths: [...files.slice(i * 5, i * 5 + 1 + (i % 5)), join(dir, 'none')], bound: i % 3 === 0 ? 10 : 64 }));
  const read = await Promise.all(calls.map((c) => readProcFiles(c.paths, c.bound)));
  t.same(read, calls.map((c) => c.paths.map((p) => {
    try {
      const text = readFileSync(p, 'utf8');
      return text.length > c.bound ? null : text;
    } catch {
      return null;
    }
  })));
});

t.test("a process's mount table and status, only while its cgroup file names the container", async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => child.kill('SIGKILL'));
  const pid = child.pid!;
  const id = ownCgroupWord(); // the child is in our cgroups
  t.same(await readContainerMountTable(pid, id), parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')));
  t.match(await readStatusInContainer(pid, id), /^Name:\tsleep\n/);
  const other = 'f'.repeat(64);
  t.equal(await readContainerMountTable(pid, other), null, 'another container: the pid is not its');
  t.equal(await readStatusInContainer(pid, other), null);
  t.same(await readContainerProcesses(pid, other), { processes: [], unread: 0 });
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  t.equal(await readContainerMountTable(pid, id), null, 'gone');
  t.equal(await readStatusInContainer(pid, id), null);
});

t.test("the host's mount table: pid 1's", async (t) => {
  t.same(await readHostMountTable(), parseMountInfo(readFileSync('/proc/1/mountinfo', 'utf8')));
});
