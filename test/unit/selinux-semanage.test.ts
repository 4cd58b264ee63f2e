import t from 'tap';
import { fcontextArgs, fcontextSpec, findSemanage } from '../../src/adapters/selinux/semanage.js';

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
  const { chmodSync } = await import('node:fs');
  chmodSync(`${dir}/semanage`, 0o755);
  t.equal(findSemanage(`relative:${dir}`), `${dir}/semanage`);
});
