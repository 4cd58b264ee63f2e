import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { cgroupDirectory, parseCgroupMounts, readContainerProcesses } from '../../src/adapters/docker/container-processes.js';
import { until } from '../helpers/until.js';

const ID = 'a'.repeat(64);

/** This machine's layout: cgroup v1 controllers plus the unified hierarchy (hybrid), as mountinfo shows it. */
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

t.test('mountinfo: cgroup v1 hierarchies with their controllers, the unified one, escaped paths', async (t) => {
  const mounts = parseCgroupMounts(`${HYBRID_MOUNTINFO}50 23 0:40 /sub /mnt/with\\040space rw - cgroup2 cgroup2 rw\n`);
  t.same(mounts, [
    { controllers: ['rw', 'cpu', 'cpuacct'], root: '/', mountPoint: '/sys/fs/cgroup/cpu,cpuacct' },
    { controllers: ['rw', 'memory'], root: '/', mountPoint: '/sys/fs/cgroup/memory' },
    { controllers: ['rw', 'pids'], root: '/', mountPoint: '/sys/fs/cgroup/pids' },
    { controllers: ['rw', 'xattr', 'name=systemd'], root: '/', mountPoint: '/sys/fs/cgroup/systemd' },
    { controllers: null, root: '/', mountPoint: '/sys/fs/cgroup/unified' },
    { controllers: null, root: '/sub', mountPoint: '/mnt/with space' },
  ]);
});

t.test("the container's cgroup directory: unified first when it names the container, else a v1 hierarchy", async (t) => {
  const mounts = parseCgroupMounts(HYBRID_MOUNTINFO);
  const hybrid = `8:pids:/docker/${ID}\n4:memory:/elsewhere/docker/${ID}\n2:cpu,cpuacct:/docker/${ID}\n0::/docker/${ID}\n`;
  t.equal(cgroupDirectory(hybrid, mounts, ID), `/sys/fs/cgroup/unified/docker/${ID}`);
  // a runtime that left the unified hierarchy alone: the first v1 line that names the container
  const v1only = `9:name=systemd:/docker/${ID}\n8:pids:/docker/${ID}\n0::/init.scope\n`;
  t.equal(cgroupDirectory(v1only, mounts, ID), `/sys/fs/cgroup/systemd/docker/${ID}`);
  // pure v2 (systemd driver)
  const v2 = parseCgroupMounts('30 23 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n');
  t.equal(cgroupDirectory(`0::/system.slice/docker-${ID}.scope\n`, v2, ID), `/sys/fs/cgroup/system.slice/docker-${ID}.scope`);
});

t.test('no directory when no mounted hierarchy holds the container', async (t) => {
  const mounts = parseCgroupMounts(HYBRID_MOUNTINFO);
  t.equal(cgroupDirectory(`0::/docker/${'b'.repeat(64)}\n`, mounts, ID), null, 'another container');
  t.equal(cgroupDirectory(`3:cpuset:/docker/${ID}\n`, mounts, ID), null, 'cpuset is not mounted here');
  t.equal(cgroupDirectory('', mounts, ID), null);
  // a mount of a sub-tree only reaches paths below its root
  const sub = parseCgroupMounts('30 23 0:27 /docker /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n');
  t.equal(cgroupDirectory(`0::/docker/${ID}\n`, sub, ID), `/sys/fs/cgroup/${ID}`);
  t.equal(cgroupDirectory(`0::/other/${ID}\n`, sub, ID), null);
});

/**
 * Cgroups of the test's own in the unified hierarchy (below one named `name`), each made by `cgroup`
 * (its parent first), and sleeping processes put in them: all gone when `t` ends.
 */
function realCgroups(t: Test, name: string) {
  const unified = parseCgroupMounts(readFileSync('/proc/self/mountinfo', 'utf8')).find((m) => m.controllers === null && m.root === '/');
  if (unified === undefined) throw new Error('no cgroup2 hierarchy mounted at its root here');
  const parent = join(unified.mountPoint, `${name}-${process.pid}`);
  const dirs = [parent];
  const children: ChildProcess[] = [];
  mkdirSync(parent);
  t.teardown(async () => {
    await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(null) : (c.once('exit', resolve), c.kill('SIGKILL'))))));
    // An exited process leaves its cgroup as it is reaped: removing the directory may wait for that.
    for (const dir of dirs.reverse()) await until(async () => { try { rmdirSync(dir); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; } return true; }, 10_000, `${dir} removed`);
  });
  return {
    parent,
    cgroup: (dir: string): string => (mkdirSync(dir), dirs.push(dir), dir),
    sleeper: (dir: string): number => {
      const child = spawn('sleep', ['600'], { stdio: 'ignore' });
      children.push(child);
      writeFileSync(join(dir, 'cgroup.procs'), String(child.pid));
      return child.pid!;
    },
  };
}

const pidsOf = async (init: number, id: string) => (await readContainerProcesses(init, id)).processes.map((p) => p.pid).sort((a, b) => a - b);

t.test("a process moved into a cgroup below the container's is one of its processes (real cgroups, the unified hierarchy)", async (t) => {
  const { parent, cgroup, sleeper } = realCgroups(t, 'dw-test-processes');
  const id = randomBytes(32).toString('hex');
  const own = cgroup(join(parent, id));
  const init = sleeper(own);
  t.same(await pidsOf(init, id), [init], 'the init alone, in a cgroup with none below it');
  const below = cgroup(join(own, 'hidden'));
  t.same(await pidsOf(init, id), [init], 'an empty cgroup below changes nothing');
  const hidden = sleeper(below);
  t.same(await pidsOf(init, id), [init, hidden].sort((a, b) => a - b), 'the process in the cgroup below is read too');
});

t.test("each container's processes are read where its init's cgroup file says, wherever the last container's cgroup was (real cgroups)", async (t) => {
  const { parent, cgroup, sleeper } = realCgroups(t, 'dw-test-layouts');
  const [a, b, c] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex'), randomBytes(32).toString('hex')];
  const initA = sleeper(cgroup(join(parent, a)));
  t.same(await pidsOf(initA, a), [initA], 'the first container: its init');
  // The next one is elsewhere, and a cgroup named after it where the last one's layout puts it holds another process.
  const initB = sleeper(cgroup(join(cgroup(join(parent, 'elsewhere')), `docker-${b}.scope`)));
  sleeper(cgroup(join(parent, b)));
  t.same(await pidsOf(initB, b), [initB], 'read where its init is, not where the last layout points');
  // Back in the first layout, with two processes: the cgroup read beside the init's files is its own.
  const ownC = cgroup(join(parent, c));
  const initC = sleeper(ownC);
  const second = sleeper(ownC);
  t.same(await pidsOf(initC, c), [initC, second].sort((x, y) => x - y), 'both processes of a container where the layout points');
});
