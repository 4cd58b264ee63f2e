import { readFileSync } from 'node:fs';
import t from 'tap';
import { deviceNumber, entryAt, hostPathsOf, parseMountInfo, pathInFilesystem, volumeBacking } from '../../src/domain/mount-map.js';

/** A host with / on 254:0, /run on tmpfs 0:25, a volume `_data` that is a bind of /etc, and a loop disk on a volume. */
const HOST = parseMountInfo(
  [
    '27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda1 rw',
    '29 27 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw',
    '40 27 254:0 /etc /var/lib/docker/volumes/v/_data rw shared:1 - ext4 /dev/vda1 rw',
    '41 27 7:0 / /var/lib/docker/volumes/disk/_data rw shared:9 - ext4 /dev/loop0 rw',
    '42 27 254:0 /srv/with\\040space /mnt/space rw - ext4 /dev/vda1 rw',
  ].join('\n'),
);

const CONTAINER = parseMountInfo(
  [
    '109 61 0:50 / / rw,relatime master:3 - overlay overlay rw,lowerdir=/x',
    '120 109 254:0 /etc /h rw,relatime - ext4 /dev/vda1 rw',
    '121 109 0:25 /dw/docker.sock /var/run/docker.sock rw - tmpfs tmpfs rw',
    '122 109 7:0 / /disk rw - ext4 /dev/loop0 rw',
    '123 109 8:16 / /raw rw - ext4 /dev/sdb rw',
    '124 109 254:0 /etc /h ro - ext4 /dev/vda1 rw',
    'garbage line',
  ].join('\n'),
);

t.test('parseMountInfo: fields, escapes, optional fields, junk skipped', async (t) => {
  t.equal(CONTAINER.length, 6);
  t.same(HOST[4], { major: 254, minor: 0, root: '/srv/with space', mountPoint: '/mnt/space', options: ['rw'], fstype: 'ext4', source: '/dev/vda1', shared: false });
  t.same([HOST[0]!.shared, HOST[2]!.shared, CONTAINER[0]!.shared], [true, true, false], 'shared:N among the optional fields; master:N is not shared');
  t.same(entryAt(CONTAINER, '/h')?.root, '/etc', "dockerd's mount, not one stacked on it");
});

t.test('parseMountInfo at some mount points: the same entries as the whole table has there, in its order', async (t) => {
  const text = [
    '109 61 0:50 / / rw,relatime master:3 - overlay overlay rw,lowerdir=/x',
    '120 109 254:0 /etc /h rw,relatime - ext4 /dev/vda1 rw',
    '125 109 254:0 /srv /with\\040space rw shared:4 - ext4 /dev/vda1 rw',
    'garbage /h line',
    '124 109 254:0 /etc /h ro - ext4 /dev/vda1 rw',
    '126 109 0:25 / /run rw - tmpfs tmpfs rw',
  ].join('\n');
  const whole = parseMountInfo(text);
  for (const points of [['/'], ['/h'], ['/with space'], ['/', '/run', '/h'], ['/nowhere'], []]) {
    const at = new Set(points);
    t.same(parseMountInfo(text, at), whole.filter((e) => at.has(e.mountPoint)), points.join(' '));
  }
  t.equal(parseMountInfo(text, new Set(['/h'])).length, 2, 'both mounts at /h: the first is dockerd\'s (entryAt)');
  t.equal(parseMountInfo(text, new Set(['/with\\040space'])).length, 0, 'mount points are compared unescaped');
  const host = readFileSync('/proc/self/mountinfo', 'utf8');
  const hostWhole = parseMountInfo(host);
  const some = new Set(hostWhole.filter((_, i) => i % 2 === 0).map((e) => e.mountPoint));
  t.same(parseMountInfo(host, some), hostWhole.filter((e) => some.has(e.mountPoint)), "this process's own table");
});

t.test('parseMountInfo: lines end at newlines only', async (t) => {
  // An unescaped carriage return (a filesystem's option) followed by what looks like a mount line.
  const text = '1 0 0:50 / / rw - fuse src rw,x=\r2 1 254:0 /etc /etc rw - ext4 /dev/vda1 rw\n3 1 0:25 / /run rw - tmpfs tmpfs rw';
  t.same(parseMountInfo(text).map((e) => e.mountPoint), ['/', '/run']);
});

t.test('hostPathsOf: every host place of the same device and root', async (t) => {
  const at = (destination: string) => hostPathsOf(entryAt(CONTAINER, destination)!, HOST);
  t.same(at('/h'), ['/etc', '/var/lib/docker/volumes/v/_data'], 'a volume bound to /etc is /etc');
  t.same(at('/var/run/docker.sock'), ['/run/dw/docker.sock']);
  t.same(at('/disk'), ['/var/lib/docker/volumes/disk/_data']);
  t.same(at('/raw'), [], 'a device the host has not mounted');
  t.same(hostPathsOf({ ...entryAt(CONTAINER, '/h')!, root: '/srv/with space/x' }, HOST), ['/srv/with space/x', '/mnt/space/x']);
});

t.test('pathInFilesystem: where a path sits in its filesystem, by the mount on top at its longest mount point', async (t) => {
  const root = deviceNumber(254, 0);
  t.equal(pathInFilesystem(HOST, '/run/docker.sock', deviceNumber(0, 25)), '/docker.sock', 'below /run: the tmpfs, from its root');
  t.equal(pathInFilesystem(HOST, '/run/docker.sock', root), null, 'not on the root filesystem');
  t.equal(pathInFilesystem(HOST, '/var/lib/docker/volumes/v/_data/passwd', root), '/etc/passwd', 'through a bind of /etc');
  t.equal(pathInFilesystem(HOST, '/var/lib/docker/volumes/v/_data', root), '/etc', 'the mount point itself');
  t.equal(pathInFilesystem(HOST, '/var/lib/docker/volumes/v/_database', root), '/var/lib/docker/volumes/v/_database', 'a sibling with the same prefix is not below it');
  t.equal(pathInFilesystem(HOST, '/mnt/space/a', root), '/srv/with space/a', 'escaped roots read as the kernel means them');
  const stacked = parseMountInfo(['27 1 254:0 / / rw - ext4 /dev/vda1 rw', '50 27 254:0 /srv/a /mnt rw - ext4 /dev/vda1 rw', '51 50 254:0 /srv/b /mnt rw - ext4 /dev/vda1 rw'].join('\n'));
  t.equal(pathInFilesystem(stacked, '/mnt/x', root), '/srv/b/x', 'of two mounts at one point, the later (on top)');
});

t.test('deviceNumber: as stat(2) reports st_dev', async (t) => {
  t.equal(deviceNumber(254, 0), 65024n, '/ of this machine (stat -c %d /)');
  t.equal(deviceNumber(0, 25), 25n);
  t.equal(deviceNumber(259, 300), (300n & 0xffn) | (259n << 8n) | ((300n & ~0xffn) << 12n));
});

t.test('volumeBacking: bind, block device, network, plain', async (t) => {
  t.same(volumeBacking({ type: 'none', o: 'bind', device: '/' }), { kind: 'bind', device: '/' });
  t.same(volumeBacking({ type: 'none', o: 'rbind,ro', device: '/etc' }), { kind: 'bind', device: '/etc' });
  t.same(volumeBacking({ type: 'ext4', device: '/dev/sda1' }), { kind: 'device', device: '/dev/sda1' });
  t.same(volumeBacking({ type: 'nfs', o: 'addr=10.0.0.1,rw', device: ':/export' }), { kind: 'network', device: ':/export' });
  t.same(volumeBacking({ type: 'cifs', device: '//server/share' }), { kind: 'network', device: '//server/share' });
  t.same(volumeBacking({ type: 'tmpfs', device: 'tmpfs' }), null, 'a fresh tmpfs mounts nothing of the host');
  t.same(volumeBacking({}), null);
  t.same(volumeBacking(null), null);
});
