import t from 'tap';
import { lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pathProbe } from '../../src/adapters/fs/path-probe.js';

/** The probe's answers from real `realpath` and `stat` children (its deadline: test/integration/evasion-mounts, a frozen FUSE mount). */
t.test('realpath and identity, as the kernel sees them', async (t) => {
  const dir = t.testdir({});
  mkdirSync(join(dir, 'real dir\nwith newline'));
  symlinkSync(join(dir, 'real dir\nwith newline'), join(dir, 'link'));
  const probe = pathProbe();
  t.same(await probe.realpath(join(dir, 'link')), { ok: true, value: join(dir, 'real dir\nwith newline') }, 'NUL-terminated output: any name');
  t.same(await probe.realpath(join(dir, 'missing')), { ok: false, reason: 'error' });
  const s = lstatSync(join(dir, 'link'));
  t.same(await probe.identity(join(dir, 'link')), { ok: true, value: `${s.dev}:${s.ino}` }, 'the link itself (lstat)');
  t.same(await probe.realpath('-n'), { ok: false, reason: 'error' }, 'a name that looks like an option is a path');
});
