import { chmodSync, existsSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { join } from 'node:path';
import t from 'tap';
import { prepareDirectory, readLabel, relabelTree, useProcPaths, writeLabel } from '../../src/adapters/selinux/native.js';
import { bindMount, bindReadOnly, labelsBelow, makeTree, mountFs, removeInBackground, scratchRoot } from '../helpers/label-tree.js';

/**
 * The walker (native/selinux_label.c) on the machine's real filesystems: ext4, ramfs (no xattrs:
 * ENOTSUP), a read-only bind mount (EROFS), symlinks planted where a container could plant them.
 */
const SHARED = 'container_file_t:s0';
const LABEL = `system_u:object_r:${SHARED}`;

const root = scratchRoot();
t.teardown(() => rmSync(root, { recursive: true, force: true }));

t.test('a tree is labelled recursively; own user and role kept; a second walk changes nothing', async (t) => {
  const dir = join(root, 'tree');
  makeTree(dir, 3, 4);
  writeLabel(join(dir, 'd1/f2'), 'staff_u:staff_r:user_home_t:s0');
  const first = await relabelTree(dir, SHARED);
  t.match(first, { visited: 1 + 3 * 5, labelled: 16, alreadyLabelled: 0, failed: 0, rootError: null, rootOldLabel: null, rootNewLabel: LABEL });
  for (const [path, label] of labelsBelow(dir)) t.equal(label, path.endsWith('d1/f2') ? 'staff_u:staff_r:container_file_t:s0' : LABEL, path);
  const second = await relabelTree(dir, SHARED);
  t.match(second, { visited: 16, labelled: 0, alreadyLabelled: 16, rootOldLabel: LABEL });
});

t.test('symlinks are never followed: not inside the tree, not in the root path', async (t) => {
  const outside = join(root, 'outside');
  mkdirSync(outside);
  writeFileSync(join(outside, 'secret'), '');
  const dir = join(root, 'links');
  mkdirSync(dir);
  symlinkSync(join(outside, 'secret'), join(dir, 'to-file'));
  symlinkSync(outside, join(dir, 'to-dir'));
  const result = await relabelTree(dir, SHARED);
  t.match(result, { visited: 3, labelled: 3, failed: 0 });
  t.equal(readLabel(join(dir, 'to-dir')), LABEL, 'the link itself is labelled, as :z does');
  t.equal(readLabel(outside), null, 'its target is not');
  t.equal(readLabel(join(outside, 'secret')), null);
  // A root whose path runs through a symlink (swapped in after the path was approved) is refused.
  t.match(await relabelTree(join(dir, 'to-dir'), SHARED), { rootError: 'ELOOP', visited: 0 });
  t.match(await relabelTree(join(dir, 'to-dir', 'secret'), SHARED), { rootError: /^(ELOOP|ENOTDIR)$/, visited: 0 });
  t.equal(readLabel(join(outside, 'secret')), null);
});

t.test('kernels before 6.13 (no getxattrat/setxattrat): the /proc/self/fd path does the same', async (t) => {
  useProcPaths(true);
  t.teardown(() => useProcPaths(false));
  const dir = join(root, 'proc-path');
  makeTree(dir, 2, 2);
  writeFileSync(join(root, 'proc-target'), '');
  symlinkSync(join(root, 'proc-target'), join(dir, 'link'));
  writeLabel(join(dir, 'd0/f0'), 'staff_u:staff_r:user_home_t:s0');
  t.match(await relabelTree(dir, SHARED), { visited: 8, labelled: 8, failed: 0, rootError: null });
  for (const [path, label] of labelsBelow(dir)) t.equal(label, path.endsWith('d0/f0') ? 'staff_u:staff_r:container_file_t:s0' : LABEL, path);
  t.equal(readLabel(join(root, 'proc-target')), null);
  t.match(await relabelTree(dir, SHARED), { labelled: 0, alreadyLabelled: 8 });
  t.match(await relabelTree(join(dir, 'link'), SHARED), { rootError: 'ELOOP' });
});

t.test('a file mounted from another filesystem below the root is skipped too', async (t) => {
  const dir = join(root, 'file-mount');
  makeTree(dir, 1, 2);
  const other = join(root, 'other-fs');
  t.teardown(mountFs('tmpfs', other));
  writeFileSync(join(other, 'cfg'), '');
  t.teardown(bindMount(join(other, 'cfg'), join(dir, 'd0', 'f1')));
  t.match(await relabelTree(dir, SHARED), { otherFilesystem: 1, labelled: 3, failed: 0 });
  t.equal(readLabel(join(other, 'cfg')), null);
});

t.test('a directory swapped for a symlink while the walk runs never leads it outside', async (t) => {
  const dir = join(root, 'swapping');
  t.teardown(mountFs('tmpfs', dir));
  // Named like the entries of the swapped directories, so a walk that went through the link would hit them.
  const outside = join(root, 'swap-target');
  mkdirSync(outside);
  for (let f = 0; f < 2000; f += 7) writeFileSync(join(outside, `f${f}`), '');
  makeTree(dir, 20, 2000);
  // The walk runs on libuv's pool; this thread meanwhile does what a hostile container would.
  let swaps = 0;
  for (let round = 0; round < 5; round++) {
    let walking = true;
    const walk = relabelTree(dir, `container_file_t:s0:c${round}`).finally(() => (walking = false));
    while (walking) {
      for (let d = 0; d < 20; d += 3) {
        const target = join(dir, `d${d}`);
        renameSync(target, `${target}.moved`);
        symlinkSync(outside, target);
        await yieldToLoop();
        unlinkSync(target);
        renameSync(`${target}.moved`, target);
        swaps++;
      }
    }
    const result = await walk;
    t.equal(result.rootError, null);
  }
  t.ok(swaps > 0, `${swaps} swaps during the walks`);
  const leaked = [...labelsBelow(outside)].filter(([, label]) => label !== null);
  t.same(leaked, [], 'nothing outside the tree got a label');
});

t.test('a single file can be the root (a file bind mount)', async (t) => {
  const file = join(root, 'app.conf');
  writeFileSync(file, '');
  t.match(await relabelTree(file, SHARED), { visited: 1, labelled: 1, rootNewLabel: LABEL });
});

t.test('another filesystem below the root is neither labelled nor entered', async (t) => {
  const dir = join(root, 'with-mount');
  makeTree(dir, 1, 1);
  t.teardown(mountFs('tmpfs', join(dir, 'mnt')));
  writeFileSync(join(dir, 'mnt', 'inner'), '');
  const result = await relabelTree(dir, SHARED);
  t.match(result, { otherFilesystem: 1, failed: 0, labelled: 3 });
  t.equal(readLabel(join(dir, 'mnt', 'inner')), null);
});

t.test('a filesystem without xattrs (ramfs) is ENOTSUP at the root: nothing is changed', async (t) => {
  const dir = join(root, 'ramfs');
  t.teardown(mountFs('ramfs', dir));
  mkdirSync(join(dir, 'sub'));
  const result = await relabelTree(dir, SHARED);
  t.equal(result.rootError, 'EOPNOTSUPP');
  t.equal(result.labelled, 0);
  t.equal(result.failed, 1, 'the entry below failed too, and is counted');
  t.match(result.errors, [{ path: join(dir, 'sub'), code: 'EOPNOTSUPP' }]);
});

t.test('a read-only filesystem is EROFS, counted with paths', async (t) => {
  const source = join(root, 'ro-source');
  makeTree(source, 1, 2);
  const dir = join(root, 'ro');
  t.teardown(bindReadOnly(source, dir));
  const result = await relabelTree(dir, SHARED);
  t.equal(result.rootError, 'EROFS');
  t.equal(result.failed, 3);
  t.same(result.errors.map((e) => e.code), ['EROFS', 'EROFS', 'EROFS']);
  t.equal(readLabel(join(source, 'd0')), null);
});

// Big trees on a tmpfs (it holds security.* xattrs too): this machine's ext4 creates files ~40× slower.
t.test('entries that vanish mid-walk are skipped and counted, never a crash', async (t) => {
  const dir = join(root, 'vanishing');
  t.teardown(mountFs('tmpfs', dir));
  // A real race, so tried until a walk meets it (`rm` in another process, started just before).
  const seen: number[] = [];
  for (let attempt = 0; attempt < 10 && !seen.some((n) => n > 0); attempt++) {
    makeTree(dir, 40, 2000);
    const removed = removeInBackground(...Array.from({ length: 40 }, (_, d) => join(dir, `d${d}`)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const result = await relabelTree(dir, SHARED);
    await removed;
    t.equal(result.rootError, null);
    t.equal(result.failed, 0, JSON.stringify(result.errors));
    t.equal(result.visited, result.labelled + result.alreadyLabelled + result.vanished, 'every entry is accounted for');
    seen.push(result.vanished);
  }
  t.ok(seen.some((n) => n > 0), `some entries vanished mid-walk (per attempt: ${seen.join(', ')})`);
});

t.test('a huge tree (100,000 entries) is labelled in one call', async (t) => {
  const dir = join(root, 'huge');
  t.teardown(mountFs('tmpfs', dir));
  const made = makeTree(dir, 100, 999);
  const result = await relabelTree(dir, SHARED);
  t.match(result, { visited: made + 1, labelled: made + 1, failed: 0, rootError: null });
  t.equal(readLabel(join(dir, 'd99', 'f998')), LABEL);
});

t.test('the root is never "/", nor relative, nor with . or .., nor with a NUL', async (t) => {
  t.match(await relabelTree('/', SHARED), { rootError: 'EINVAL', visited: 0 });
  t.match(await relabelTree('var/tmp', SHARED), { rootError: 'EINVAL' });
  t.match(await relabelTree(`${root}/../../etc`, SHARED), { rootError: 'EINVAL' });
  t.match(await relabelTree(`${root}/./tree`, SHARED), { rootError: 'EINVAL' });
  t.throws(() => relabelTree('/var/tmp\0/x', SHARED), TypeError);
});

t.test('storage directories are made without following symlinks; existing ones are left alone', async (t) => {
  const base = join(root, 'storage');
  const made = join(base, 'a', 'b');
  t.equal(prepareDirectory(made, 0o750, 999, 998), 'created');
  t.same([statSync(made).uid, statSync(made).gid, statSync(made).mode & 0o7777], [999, 998, 0o750]);
  t.equal(prepareDirectory(made, 0o700, 1, 1), 'exists');
  t.equal(statSync(made).mode & 0o7777, 0o750, 'an existing directory is not changed');

  // What dockerd makes for a missing -v source: empty, root:root, 0755 — given the declared owner.
  const fresh = join(base, 'fresh');
  mkdirSync(fresh);
  chmodSync(fresh, 0o755);
  t.equal(prepareDirectory(fresh, 0o2770, 999, 998), 'adopted');
  t.same([statSync(fresh).uid, statSync(fresh).mode & 0o7777], [999, 0o2770]);
  const used = join(base, 'used');
  mkdirSync(used);
  chmodSync(used, 0o755);
  writeFileSync(join(used, 'data'), '');
  t.equal(prepareDirectory(used, 0o700, 999, 998), 'exists', 'not empty: never adopted');
  t.equal(statSync(used).uid, 0);

  const outside = join(root, 'storage-outside');
  mkdirSync(outside);
  symlinkSync(outside, join(base, 'link'));
  t.throws(() => prepareDirectory(join(base, 'link', 'x'), 0o750, 999, 998), { code: /^(ELOOP|ENOTDIR)$/ });
  t.throws(() => prepareDirectory(join(base, 'link'), 0o750, 999, 998), { code: /^(ELOOP|ENOTDIR)$/ });
  t.notOk(existsSync(join(outside, 'x')));
  t.equal(statSync(outside).uid, 0);
});
