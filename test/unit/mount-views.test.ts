import t from 'tap';
import type { ContainerInspect } from '../../src/adapters/docker/facts.js';
import { readMountViews } from '../../src/adapters/docker/mount-sources.js';
import { pathProbe } from '../../src/adapters/fs/path-probe.js';
import { parseMountInfo } from '../../src/domain/mount-map.js';

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
