import { execFile } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { DOCKER_SOCKET, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

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
