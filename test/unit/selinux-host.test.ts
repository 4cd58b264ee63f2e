import t from 'tap';
import { detectSelinux, selinuxfsMount } from '../../src/adapters/selinux/detect.js';
import { homesOf } from '../../src/adapters/selinux/homes.js';
import { hasMountsBelow } from '../../src/adapters/selinux/mountinfo.js';

const MOUNTINFO_DEBIAN = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
`;
const MOUNTINFO_FEDORA = `${MOUNTINFO_DEBIAN}25 24 0:23 / /sys/fs/selinux rw,nosuid,noexec,relatime shared:4 - selinuxfs selinuxfs rw
`;

t.test('selinuxfs is found in mountinfo, with its writability', async (t) => {
  t.equal(selinuxfsMount(MOUNTINFO_DEBIAN), null);
  t.same(selinuxfsMount(MOUNTINFO_FEDORA), { path: '/sys/fs/selinux', writable: true });
  t.same(selinuxfsMount(MOUNTINFO_FEDORA.replace('/sys/fs/selinux rw,', '/sys/fs/selinux ro,')), { path: '/sys/fs/selinux', writable: false });
  // optional fields may be absent or many; escaped paths are decoded
  t.same(selinuxfsMount('25 24 0:23 / /mnt/se\\040linux rw - selinuxfs none rw\n'), { path: '/mnt/se linux', writable: true });
});

t.test('enabled only with selinuxfs read-write and a real process label', async (t) => {
  const files = (mountinfo: string, current: string | null) => async (path: string) => {
    if (path === '/proc/self/mountinfo') return mountinfo;
    if (current === null) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    return current;
  };
  t.same(await detectSelinux(files(MOUNTINFO_DEBIAN, null)), { enabled: false, reason: 'selinuxfs is not mounted' });
  t.equal((await detectSelinux(files(MOUNTINFO_FEDORA.replace('selinux rw,', 'selinux ro,'), 'system_u:system_r:init_t:s0'))).enabled, false);
  t.equal((await detectSelinux(files(MOUNTINFO_FEDORA, 'kernel\0'))).enabled, false);
  t.equal((await detectSelinux(files(MOUNTINFO_FEDORA, null))).enabled, false);
  t.same(await detectSelinux(files(MOUNTINFO_FEDORA, 'system_u:system_r:unconfined_service_t:s0\0')), { enabled: true, reason: 'selinuxfs at /sys/fs/selinux' });
});

t.test('this machine: no SELinux in the kernel, so auto finds it off', async (t) => {
  t.equal((await detectSelinux()).enabled, false);
});

t.test('homes: every absolute home of the password database, once', async (t) => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\nalice:x:1000:1000:Alice:/home/alice/:/bin/sh\nodd:x:5:5::relative:/bin/sh\nshort\nnobody:x:65534:65534::/nonexistent:/bin/false\nroot2:x:0:0::/root:/bin/sh\n';
  t.same(homesOf(passwd), ['/root', '/usr/sbin', '/home/alice', '/nonexistent']);
});

t.test('mounts strictly below a walk root are found (then every entry is stat\'ed for its device)', async (t) => {
  const info = `${MOUNTINFO_FEDORA}30 22 0:40 / /srv/containers/web/cache rw - tmpfs tmpfs rw\n31 22 0:41 / /srv/data rw - ext4 /dev/vdb rw\n`;
  t.equal(hasMountsBelow('/srv/containers', info), true);
  t.equal(hasMountsBelow('/srv/containers/web', info), true);
  t.equal(hasMountsBelow('/srv/containers/web/cache', info), false, 'the root itself being a mount point is not below it');
  t.equal(hasMountsBelow('/srv/containers/api', info), false);
  t.equal(hasMountsBelow('/srv/data', info), false);
  t.equal(hasMountsBelow('/srv', info), true);
});
