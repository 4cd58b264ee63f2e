import t from 'tap';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readEngineCgroup } from '../../src/adapters/proc/engine-cgroup.js';

const DOCKERD = '100';
const SERVICE = '/system.slice/docker.service';
const made: string[] = [];
t.teardown(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/**
 * A procfs and a /sys/fs/cgroup written by hand: dockerd (pid 100) in `SERVICE` with a docker-proxy
 * child listening on tcp/8080, and the cgroup v2 mounted at `mount` (`''`: /sys/fs/cgroup itself).
 */
function host(mount: 'unified' | '' = '') {
  const root = mkdtempSync(join(tmpdir(), 'dw-cgroup-'));
  made.push(root);
  const proc = join(root, 'proc');
  const cgroupRoot = join(root, 'sys-fs-cgroup');
  const v2 = mount === '' ? cgroupRoot : join(cgroupRoot, mount);
  mkdirSync(join(proc, 'self'), { recursive: true });
  const mounts = [`30 25 0:26 / ${v2} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw`];
  if (mount !== '') mounts.unshift(`25 1 0:22 / ${cgroupRoot} ro,nosuid shared:3 - tmpfs tmpfs ro,mode=755`, `31 25 0:27 / ${cgroupRoot}/memory rw shared:5 - cgroup cgroup rw,memory`);
  writeFileSync(join(proc, 'self', 'mountinfo'), `${mounts.join('\n')}\n`);
  const tcp = ['  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'];
  const udp = [tcp[0]!];
  let inode = 5000;
  /** A process: its cgroup (written into the tree too), parent, name, and the ports it listens on. */
  const add = (pid: string, ppid: string, comm: string, cgroup: string, listens: string[] = []) => {
    mkdirSync(join(proc, pid, 'fd'), { recursive: true });
    mkdirSync(join(proc, pid, 'net'), { recursive: true });
    writeFileSync(join(proc, pid, 'comm'), `${comm}\n`);
    writeFileSync(join(proc, pid, 'stat'), `${pid} (${comm}) S ${ppid} ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0`);
    writeFileSync(join(proc, pid, 'cgroup'), `4:memory:/\n0::${cgroup}\n`);
    mkdirSync(join(v2, cgroup), { recursive: true });
    appendFileSync(join(v2, cgroup, 'cgroup.procs'), `${pid}\n`);
    listens.forEach((listen, fd) => {
      const [proto, port] = listen.split('/') as ['tcp' | 'udp', string];
      const hexPort = Number(port).toString(16).toUpperCase().padStart(4, '0');
      (proto === 'tcp' ? tcp : udp).push(`   0: 00000000:${hexPort} 00000000:0000 ${proto === 'tcp' ? '0A' : '07'} 00000000:00000000 00:00000000 00000000     0        0 ${++inode} 1 0000000000000000 100 0 0 10 0`);
      symlinkSync(`socket:[${inode}]`, join(proc, pid, 'fd', String(fd + 3)));
    });
    for (const p of [DOCKERD, pid]) {
      if (!statSync(join(proc, p), { throwIfNoEntry: false })) continue;
      writeFileSync(join(proc, p, 'net', 'tcp'), `${tcp.join('\n')}\n`);
      writeFileSync(join(proc, p, 'net', 'udp'), `${udp.join('\n')}\n`);
    }
  };
  add(DOCKERD, '1', 'dockerd', SERVICE);
  add('101', DOCKERD, 'docker-proxy', SERVICE, ['tcp/8080']);
  const read = () => readEngineCgroup(DOCKERD, { proc, cgroupRoot });
  return { add, read, v2 };
}

t.test('dockerd in a cgroup of its own, as systemd runs it: the cgroup, by path and id', async (t) => {
  const unified = host();
  t.same(unified.read(), { cgroup: { mount: '', path: 'system.slice/docker.service', id: statSync(join(unified.v2, SERVICE)).ino } }, 'unified host');
  const hybrid = host('unified');
  t.same(hybrid.read(), { cgroup: { mount: 'unified', path: 'system.slice/docker.service', id: statSync(join(hybrid.v2, SERVICE)).ino } }, 'hybrid host: the v2 mount is /sys/fs/cgroup/unified');
  hybrid.add('102', '1', 'containerd-shim-runc-v2', SERVICE);
  hybrid.add('103', DOCKERD, 'containerd', SERVICE);
  t.ok('cgroup' in hybrid.read(), 'its containerd, and shims it left to init, listening on no inet port');
  appendFileSync(join(hybrid.v2, SERVICE, 'cgroup.procs'), '104\n');
  t.ok('cgroup' in hybrid.read(), 'a process listed there but gone before it was read (a short-lived child of dockerd\'s)');
});

t.test('no cgroup: the root, another process in it, a listener of dockerd\'s own, a path nft may not be given', async (t) => {
  const root = host();
  root.add('200', '1', 'dockerd', '/');
  t.same(readEngineCgroup('200', { proc: join(root.v2, '..', 'proc'), cgroupRoot: root.v2 }), { none: 'dockerd is in the root cgroup, with every other process' });

  const shared = host();
  shared.add('300', '1', 'sshd', SERVICE, ['tcp/22']);
  t.match(shared.read(), { none: /holds process 300 \(sshd\), not dockerd's/ }, 'a process that is not dockerd\'s');
  const below = host();
  below.add('301', '1', 'nginx', `${SERVICE}/sub`);
  t.match(below.read(), { none: /holds process 301 \(nginx\)/ }, 'in a cgroup below it too (the match covers it)');

  const api = host();
  api.add(DOCKERD, '1', 'dockerd', SERVICE, ['tcp/2376']);
  t.match(api.read(), { none: /holds dockerd \(100\), listening on tcp\/2376/ }, 'dockerd listening on TCP itself (-H tcp://, swarm)');
  const gossip = host();
  gossip.add('104', DOCKERD, 'containerd', SERVICE, ['udp/7946']);
  t.match(gossip.read(), { none: /holds containerd \(104\), listening on udp\/7946/ }, 'a child other than docker-proxy bound to a UDP port');

  const odd = host();
  odd.add(DOCKERD, '1', 'dockerd', '/system.slice/docker" accept.service');
  t.match(odd.read(), { none: /is not a path nft may be given/ });
});

t.test('no cgroup v2 where nft looks, or none at all', async (t) => {
  const elsewhere = host();
  t.same(readEngineCgroup(DOCKERD, { proc: join(elsewhere.v2, '..', 'proc'), cgroupRoot: '/nowhere' }), { none: 'no cgroup v2 mounted at /nowhere or in a directory of it' });
  const v1 = host();
  v1.add(DOCKERD, '1', 'dockerd', SERVICE);
  writeFileSync(join(v1.v2, '..', 'proc', DOCKERD, 'cgroup'), '4:memory:/docker\n1:name=systemd:/system.slice/docker.service\n');
  t.same(v1.read(), { none: 'dockerd is in no cgroup v2' });
});
