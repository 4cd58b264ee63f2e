import { once } from 'node:events';
import { linkSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import type { ContainerInspect } from '../../src/adapters/docker/facts.js';
import { readMountViews } from '../../src/adapters/docker/mount-sources.js';
import { pathProbe } from '../../src/adapters/fs/path-probe.js';
import { parseMountInfo } from '../../src/domain/mount-map.js';
import { mountFs } from '../helpers/label-tree.js';

// A container binding /srv/data (on the root filesystem, 254:0) at /data and a filesystem 0:99 at /cache.
const CONTAINER = parseMountInfo(
  '900 800 254:0 /srv/data /data rw,relatime - ext4 /dev/vda rw\n' +
  '901 800 0:99 / /cache rw,relatime - tmpfs tmpfs rw\n',
);
const HOST_BEFORE = parseMountInfo('27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n');
const HOST_NOW = parseMountInfo('27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n' + '95 27 0:99 / /mnt/cache rw,relatime - tmpfs tmpfs rw\n');

const inspect = (mounts: Array<{ Source: string; Destination: string }>) =>
  ({ Mounts: mounts.map((m) => ({ Type: 'bind', ...m, Mode: '', RW: true, Propagation: 'rprivate' })) }) as unknown as ContainerInspect;

t.test('the host table read since the container started is used when it shows every filesystem the container mounts', async (t) => {
  const asked: boolean[] = [];
  const views = await readMountViews({
    inspect: inspect([{ Source: '/srv/data', Destination: '/data' }]),
    volumeOptions: async () => null,
    probe: pathProbe(),
    tables: async (fresh) => (asked.push(fresh), { container: CONTAINER, host: HOST_BEFORE }),
    sockets: [],
  });
  t.same(asked, [false], 'no fresh read');
  t.same(views.get('/data')?.hostPaths, ['/srv/data']);
});

t.test('a filesystem the host table does not show (mounted after that read began) makes it read afresh', async (t) => {
  const asked: boolean[] = [];
  const views = await readMountViews({
    inspect: inspect([{ Source: '/srv/data', Destination: '/data' }, { Source: '/srv/cache', Destination: '/cache' }]),
    volumeOptions: async () => null,
    probe: pathProbe(),
    tables: async (fresh) => (asked.push(fresh), { container: CONTAINER, host: fresh ? HOST_NOW : HOST_BEFORE }),
    sockets: [],
  });
  t.same(asked, [false, true], 'then a read begun after the call');
  t.ok(views.get('/cache')?.hostPaths.includes('/mnt/cache'), 'its host path, from the fresh table');
  t.same(views.get('/data')?.hostPaths, ['/srv/data']);
});

t.test('an engine socket with one name is told by its root in the mount table, without a lookup; a hard-linked one is looked up', async (t) => {
  const dir = mkdtempSync('/tmp/dw-views-');
  const unmount = mountFs('tmpfs', dir); // the socket's filesystem: its path there is known (/s.sock)
  t.teardown(() => (unmount(), rmSync(dir, { recursive: true, force: true })));
  const socket = join(dir, 's.sock');
  const server = createServer().listen(socket);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const { dev } = statSync(socket, { bigint: true });
  const device = `${Number(dev >> 8n) & 0xfff}:${Number(dev & 0xffn) | (Number(dev >> 12n) & ~0xff)}`;
  const host = parseMountInfo(`27 1 254:0 / / rw - ext4 /dev/vda rw\n95 27 ${device} / ${dir} rw - tmpfs none rw\n`);
  const probe = pathProbe();
  let lookups = 0;
  const counted = { realpath: probe.realpath, identity: (path: string) => (lookups++, probe.identity(path)) };
  const viewsOf = (root: string) =>
    readMountViews({
      inspect: inspect([{ Source: join(dir, root), Destination: '/var/run/docker.sock' }]),
      volumeOptions: async () => null,
      probe: counted,
      tables: async () => ({ container: parseMountInfo(`900 800 ${device} ${root} /var/run/docker.sock rw - tmpfs none rw\n`), host }),
      sockets: [socket],
    });
  t.same((await viewsOf('/s.sock')).get('/var/run/docker.sock')?.hostPaths, [socket], 'the socket');
  t.same((await viewsOf('/other.sock')).get('/var/run/docker.sock')?.hostPaths, [join(dir, 'other.sock')], 'another file of its filesystem is not');
  t.equal(lookups, 0, 'neither was looked up');
  linkSync(socket, join(dir, 'link.sock'));
  const linked = await viewsOf('/link.sock');
  t.equal(lookups, 1, 'with two names, the mount is looked up');
  t.same(linked.get('/var/run/docker.sock')?.hostPaths, [join(dir, 'link.sock'), socket], 'and the link is the socket');
});
