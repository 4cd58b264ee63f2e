import t from 'tap';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { fcontextArgs, fcontextSpec, findSemanage, registerFcontext } from '../../src/adapters/selinux/semanage.js';

t.test('the fcontext spec covers the directory and below, with regex characters escaped', async (t) => {
  t.equal(fcontextSpec('/srv/containers/web'), '/srv/containers/web(/.*)?');
  t.equal(fcontextSpec('/srv/a.b+c(d)[e]$f'), '/srv/a\\.b\\+c\\(d\\)\\[e\\]\\$f(/.*)?');
  t.ok(new RegExp(`^${fcontextSpec('/srv/a.b')}$`).test('/srv/a.b/x/y'));
  t.notOk(new RegExp(`^${fcontextSpec('/srv/a.b')}$`).test('/srv/aXb'));
});

t.test('type and level (with categories) become -t and -r', async (t) => {
  t.same(fcontextArgs('add', '/srv/c', 'container_file_t:s0'), ['fcontext', '-a', '-t', 'container_file_t', '-r', 's0', '/srv/c(/.*)?']);
  t.same(fcontextArgs('modify', '/srv/c', 'container_file_t:s0:c1,c2'), ['fcontext', '-m', '-t', 'container_file_t', '-r', 's0:c1,c2', '/srv/c(/.*)?']);
});

t.test('semanage is found only where it is installed', async (t) => {
  const dir = t.testdir({ semanage: '' });
  t.equal(findSemanage(`${dir}`), null, 'not executable');
  chmodSync(`${dir}/semanage`, 0o755);
  t.equal(findSemanage(`relative:${dir}`), `${dir}/semanage`);
});

t.test('registerFcontext adds, and modifies a rule that is already defined', async (t) => {
  // A stand-in for semanage, named as such: the real one needs an SELinux policy store, which this
  // machine (no SELinux in its kernel) does not have. It logs its argv and answers -a as semanage
  // does for a spec it already has.
  const dir = t.testdir({
    semanage: `#!/bin/sh\nprintf '%s\\n' "$*" >> "$0.log"\nif [ "$2" = -a ] && grep -q -- '-m ' "$0.known" 2>/dev/null; then echo "ValueError: File context for $7 already defined" >&2; exit 1; fi\n`,
  });
  chmodSync(`${dir}/semanage`, 0o755);
  await registerFcontext(`${dir}/semanage`, '/srv/c', 'container_file_t:s0');
  writeFileSync(`${dir}/semanage.known`, '-m ');
  await registerFcontext(`${dir}/semanage`, '/srv/c', 'container_file_t:s0:c1,c2');
  t.same(readFileSync(`${dir}/semanage.log`, 'utf8').trim().split('\n'), [
    'fcontext -a -t container_file_t -r s0 /srv/c(/.*)?',
    'fcontext -a -t container_file_t -r s0:c1,c2 /srv/c(/.*)?',
    'fcontext -m -t container_file_t -r s0:c1,c2 /srv/c(/.*)?',
  ]);
});
