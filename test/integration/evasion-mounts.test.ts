import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { CheckReport } from '../../src/cli/check.js';
import { createInterface } from 'node:readline';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, TEST_IMAGE, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

/**
 * Evasions of the mount checks (issue 13, "Mounts"): what a container really holds, not what it
 * asked for. Each case is a real container on the private dockerd, judged by `dockwarden check`
 * (the same facts and evaluation as the daemon). Every case passed with no finding before the
 * mount table and volume options were read.
 */

const exec = promisify(execFile);
const SUITE = 'dw-test.suite=evasion-mounts';
const labels = { 'dw-test.suite': 'evasion-mounts' };
/** Docker's data root of the private test engine (scripts/test-env.sh). */
const DATA_ROOT = '/var/lib/dw-test/docker';
const SLEEPER = ['sleep', '600'];
const scratch = mkdtempSync('/tmp/dwx-mounts-');
const volumes: string[] = [];

const POLICY = `version: 1
containers:
  docker-socket: { action: alert, paths: [${DOCKER_SOCKET}] }
  sensitive-mounts:
    paths: [/, /etc, /dev, ${DATA_ROOT}]
    allowed: [${DATA_ROOT}/volumes]
    action: alert
volumes:
  selinux:
    relabel: shared
    roots: [${DATA_ROOT}/volumes, ${scratch}]
`;
const policyFile = join(scratch, 'policy.yaml');
writeFileSync(policyFile, POLICY);
const env = { DOCKWARDEN_POLICY: policyFile, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_SELINUX_ENABLED: 'true' };

t.teardown(async () => {
  await removeTestContainers(SUITE);
  for (const name of volumes) await docker.getVolume(name).remove({ force: true }).catch(() => {});
  rmSync(scratch, { recursive: true, force: true });
});

async function volume(options: Record<string, string>): Promise<string> {
  const name = `dwx-mounts-${process.pid}-${volumes.length}`;
  volumes.push(name);
  await docker.createVolume({ Name: name, Driver: 'local', DriverOpts: options });
  return name;
}

const start = (binds: string[]) => runContainer({ cmd: SLEEPER, labels, hostConfig: { Binds: binds } });

/** The findings `dockwarden check --json` reports for one container, as `check: paths`. */
async function findings(id: string): Promise<CheckReport['findings']> {
  const result = await dockwarden(['check', '--json'], env);
  t.not(result.code, 2, result.stderr);
  return (JSON.parse(result.stdout) as CheckReport).findings.filter((f) => f.container.id === id);
}
const summary = (list: CheckReport['findings']) =>
  list.map((f) => `${f.check}: ${((f.details.paths as string[] | undefined) ?? [(f.details as { reason?: string }).reason]).join(' ')}`).sort();

t.test('a named volume bound to / is a mount of /', async (t) => {
  const id = await start([`${await volume({ type: 'none', o: 'bind', device: '/' })}:/h`]);
  t.same(summary(await findings(id)), [
    `docker-socket: /var/run/docker.sock /run/docker.sock /run/containerd/containerd.sock /var/run/containerd/containerd.sock ${DOCKER_SOCKET}`,
    'selinux-relabel: system-path',
    'sensitive-mounts: / /etc /dev /var/lib/dw-test/docker',
  ]);
});

t.test('a named volume bound to /etc is a mount of /etc, and its relabel is refused', async (t) => {
  const id = await start([`${await volume({ type: 'none', o: 'bind', device: '/etc' })}:/h`]);
  t.same(summary(await findings(id)), ['selinux-relabel: system-path', 'sensitive-mounts: /etc']);
});

t.test('a plain named volume is allowed, and may be relabelled', async (t) => {
  const id = await start([`${await volume({})}:/h`]);
  t.same(summary(await findings(id)), []);
});

t.test('a path below a sensitive one: -v /etc/cron.d is root through cron', async (t) => {
  const id = await start(['/etc/cron.d:/c:ro']);
  t.same(summary(await findings(id)), ['selinux-relabel: outside-roots', 'sensitive-mounts: /etc']);
});

t.test('a hard link to the engine socket is the socket', async (t) => {
  // A hard link shares the socket's inode: same device, so it is made next to it.
  const link = join(DOCKER_SOCKET, '..', `dwx-mounts-${process.pid}.sock`);
  linkSync(DOCKER_SOCKET, link);
  t.teardown(() => rmSync(link, { force: true }));
  const id = await start([`${link}:/var/run/docker.sock`]);
  const found = (await findings(id)).filter((f) => f.check === 'docker-socket');
  t.equal(found.length, 1, 'a docker-socket finding');
  t.same(found[0]?.details.paths, [DOCKER_SOCKET], 'named by the configured socket it is');
});

t.test('a symlink swapped after dockerd mounted it: the mount table is judged, not the link', async (t) => {
  const link = join(scratch, 'swapped');
  const harmless = join(scratch, 'harmless');
  mkdirSync(harmless);
  symlinkSync('/etc', link);
  const id = await start([`${link}:/x`]);
  rmSync(link);
  symlinkSync(harmless, link);
  t.same(summary(await findings(id)).filter((f) => f.startsWith('sensitive')), ['sensitive-mounts: /etc']);
});

t.test('a named volume on a block device is a mount of that host device', async (t) => {
  const image = join(scratch, 'disk.img');
  await exec('truncate', ['-s', '16M', image]);
  await exec('mkfs.ext4', ['-q', '-F', image]);
  const loop = (await exec('losetup', ['--find', '--show', image])).stdout.trim();
  t.teardown(() => exec('losetup', ['-d', loop]).catch(() => {}));
  const id = await start([`${await volume({ type: 'ext4', device: loop })}:/disk`]);
  const found = await findings(id);
  t.same(summary(found), ['selinux-relabel: mounted-device', 'sensitive-mounts: /dev']);
  const mounts = found.find((f) => f.check === 'sensitive-mounts')?.details.mounts as Array<{ hostPaths: string[] }>;
  t.ok(mounts[0]?.hostPaths.includes(loop), 'the device it is');
});

t.test('a hung mount does not wedge the daemon: its containers are reported, every other one is still judged', async (t) => {
  // A real FUSE filesystem, frozen with SIGSTOP like a paused NFS server (test/helpers/stall-fs.mjs).
  const dir = join(scratch, 'stall');
  mkdirSync(dir);
  const server = spawn(process.execPath, [join(import.meta.dirname, '../helpers/stall-fs.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [first] = (await once(createInterface({ input: server.stdout! }), 'line')) as [string];
  t.equal(first, 'mounted');
  const daemon = spawnDaemon({
    policy: `version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n  sensitive-mounts: { paths: [/etc], action: alert }\n`,
    dockerSocket: DOCKER_SOCKET,
    extraConfig: 'firewall:\n  backend: nftables',
  });
  t.teardown(async () => {
    server.kill('SIGCONT');
    await daemon.stop('SIGKILL');
    await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
    await removeTestContainers(SUITE);
    await exec('umount', ['-l', dir]).catch(() => {});
    server.kill();
  });
  await daemon.waitForLog((l) => l.msg === 'reconciled');

  // Created, not started: only the request's paths tell what they mount, and those must be looked up.
  // More of them than libuv has threads (4).
  const stalled: string[] = [];
  for (let i = 0; i < 6; i++) {
    const container = await docker.createContainer({ Image: TEST_IMAGE, Cmd: SLEEPER, Labels: { 'dw-test': '1', ...labels }, HostConfig: { Binds: [`${dir}/m${i}:/x`] } });
    stalled.push(container.id);
    await daemon.waitForLog(judged(container.id, false));
  }
  process.kill(server.pid!, 'SIGSTOP');
  // A policy change makes the daemon judge every container again, now on the hung mount.
  writeFileSync(daemon.policyFile, `${readFileSync(daemon.policyFile, 'utf8')}# changed\n`);
  await daemon.waitForLog((l) => l.msg === 'policy reloaded');

  const other = await runContainer({ cmd: SLEEPER, labels, hostConfig: { CapAdd: ['SYS_ADMIN'] } });
  const killed = await daemon.waitForLog((l) => l.msg === 'container killed' && (l.container as { id?: string }).id === other);
  const unresolved = (id: string) => (l: LogLine) =>
    judged(id, false)(l) && (l.violations as Array<{ check: string; message: string }>).some((v) => v.check === 'sensitive-mounts' && v.message.includes('could not be resolved in time'));
  const reports = await Promise.all(stalled.map((id) => daemon.waitForLog(unresolved(id))));
  t.pass('each container on the hung mount is reported, fail-safe');
  t.ok(
    reports.some((r) => daemon.logs.indexOf(r) > daemon.logs.indexOf(killed)),
    'the other container was killed while lookups on the hung mount were still waiting',
  );
  const [one] = reports;
  t.match((one!.violations as Array<{ message: string }>)[0]!.message, 'mounts sensitive host paths: 1 mount whose host path could not be resolved in time (judged fail-safe)');
});
