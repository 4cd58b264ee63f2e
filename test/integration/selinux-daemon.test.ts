import { execFile } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { readLabel } from '../../src/adapters/selinux/native.js';
import type { CheckReport } from '../../src/cli/check.js';
import type { StatusReport } from '../../src/cli/status.js';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { docker, DOCKER_HOST, DOCKER_SOCKET, removeTestContainers, TEST_IMAGE } from '../helpers/docker.js';
import { makeTree, scratchRoot } from '../helpers/label-tree.js';

/**
 * Relabelling in the real daemon (dist/), driven by the test dockerd's events: on `create`, before
 * the container is started; `docker run`; a path dockerd itself creates at start; `status`; and the
 * one start-up line of each `selinux.enabled` setting.
 */
const exec = promisify(execFile);
const SUITE = 'dw-test.suite=selinux';
const SHARED = 'system_u:object_r:container_file_t:s0';
const root = scratchRoot();
const policy = `version: 1
ports:
  default: allow
volumes:
  create:
    - { match: { container: "dw-sel-*" }, path: ${root}/store/db/data, owner: "999:998", mode: "0750" }
    - { match: { container: "dw-sel-*" }, path: ${root}/store/run, owner: "999:998", mode: "2770" }
    - { match: { container: "somebody-else" }, path: ${root}/store/other, owner: "1:1" }
  selinux:
    relabel: shared
    roots: [${root}]
`;
const FORCED = 'firewall:\n  backend: nftables\nselinux:\n  enabled: true';
let daemon: DaemonProcess | null = null;
let seq = 0;

t.teardown(async () => {
  await daemon?.stop();
  await removeTestContainers(SUITE);
  rmSync(root, { recursive: true, force: true });
});

const name = () => `dw-sel-${process.pid}-d${++seq}`;
const labels = { 'dw-test': '1', 'dw-test.suite': 'selinux' };
const relabelled = (id: string, path: string) => (line: LogLine) =>
  line.msg === 'SELinux relabel done' && (line.container as { id?: string } | undefined)?.id === id && line.path === path;

t.test('forced on: said once at start-up', async (t) => {
  daemon = spawnDaemon({ policy, dockerSocket: DOCKER_SOCKET, extraConfig: FORCED });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  t.equal(daemon.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('SELinux relabelling forced on')).length, 1);
  t.ok(daemon.logs.some((l) => l.msg?.startsWith('semanage not found')), 'no semanage here: the label lives only in the xattrs');
});

t.test('create event: labelled before the container is started', async (t) => {
  const dir = join(root, 'created');
  makeTree(dir, 2, 2);
  const container = await docker.createContainer({ name: name(), Image: TEST_IMAGE, Cmd: ['sleep', '300'], Labels: labels, HostConfig: { Binds: [`${dir}:/data`] } });
  const done = await daemon!.waitForLog(relabelled(container.id, dir));
  t.match(done, { beforeStart: true, counts: { labelled: 7, failed: 0 } });
  t.equal((await container.inspect()).State.Status, 'created', 'still not started: nothing has run yet');
  t.equal(readLabel(join(dir, 'd1', 'f1')), SHARED);

  await container.start();
  await daemon!.waitForLog(judged(container.id));
  // The start is a new start: walked again, nothing left to write.
  const again = await daemon!.waitForLog((l) => l.msg === 'SELinux relabel: already labelled' && (l.container as { id: string }).id === container.id);
  t.match(again, { beforeStart: false, counts: { labelled: 0, alreadyLabelled: 7 } });
  t.equal(daemon!.logs.filter(relabelled(container.id, dir)).length, 1);
});

t.test('docker run: labelled whether the create or the start event wins; a path dockerd creates at start too', async (t) => {
  const dir = join(root, 'run');
  makeTree(dir, 1, 3);
  const fresh = join(root, 'made-by-dockerd');
  const { stdout } = await exec('docker', ['-H', DOCKER_HOST, 'run', '-d', '--name', name(), '--label', 'dw-test=1', '--label', SUITE, '-v', `${dir}:/data`, '-v', `${fresh}:/fresh`, TEST_IMAGE, 'sleep', '300']);
  const id = stdout.trim();
  const done = await daemon!.waitForLog(relabelled(id, dir));
  t.comment(`labelled ${done.beforeStart ? 'before' : 'after'} the start`);
  t.equal(readLabel(join(dir, 'd0', 'f2')), SHARED);
  // `-v` of a missing directory: dockerd makes it in the start path, so only the start event can label it.
  await daemon!.waitForLog(relabelled(id, fresh));
  t.ok(existsSync(fresh));
  t.equal(readLabel(fresh), SHARED);
});

t.test('storage directories: made with owner and mode on create, then labelled; adopted after a lost docker run race', async (t) => {
  const data = join(root, 'store', 'db', 'data');
  const container = await docker.createContainer({
    name: name(), Image: TEST_IMAGE, Cmd: ['sleep', '300'], Labels: labels,
    HostConfig: { Binds: [`${data}:/data`, `${join(root, 'store', 'other')}:/other`] },
  });
  const made = await daemon!.waitForLog((l) => l.msg === 'storage directory created' && l.path === data);
  t.match(made, { beforeStart: true, owner: '999:998', mode: '0750', rule: 'volumes.create[0]' });
  const st = statSync(data);
  t.same([st.uid, st.gid, st.mode & 0o7777], [999, 998, 0o750]);
  t.same([statSync(join(root, 'store', 'db')).uid, statSync(join(root, 'store', 'db')).mode & 0o7777], [0, 0o755], 'missing parents as dockerd makes them');
  await daemon!.waitForLog(relabelled(container.id, data));
  t.equal(readLabel(data), SHARED);
  t.notOk(existsSync(join(root, 'store', 'other')), 'not declared for this container');

  const run = join(root, 'store', 'run');
  const { stdout } = await exec('docker', ['-H', DOCKER_HOST, 'run', '-d', '--name', name(), '--label', 'dw-test=1', '--label', SUITE, '-v', `${run}:/data`, TEST_IMAGE, 'sleep', '300']);
  const id = stdout.trim();
  const line = await daemon!.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('storage directory') && l.path === run);
  t.comment(`docker run: ${line.msg}`);
  const runStat = statSync(run);
  t.same([runStat.uid, runStat.gid, runStat.mode & 0o7777], [999, 998, 0o2770]);
  await daemon!.waitForLog(relabelled(id, run));
});

t.test('status shows the relabelled paths', async (t) => {
  const config = join(daemon!.dir, 'config.yaml');
  const json = await dockwarden(['status', '--config', config, '--json']);
  t.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as StatusReport;
  const created = report.relabels.find((r) => r.path === join(root, 'created'));
  t.match(created, { outcome: 'relabelled', oldLabel: null, newLabel: SHARED, counts: { labelled: 7 } });
  t.ok(report.relabels.some((r) => r.path === join(root, 'made-by-dockerd')));
  const text = await dockwarden(['status', '--config', config]);
  t.match(text.stdout, /SELinux relabels \(latest per path\)\n/);
  t.match(text.stdout, new RegExp(`  ${join(root, 'created')}  relabelled  \\(none\\) → ${SHARED}  by dw-sel-`));
});

t.test('check lists refused relabels as the daemon raises them, only where relabelling is on', async (t) => {
  const container = await docker.createContainer({ name: name(), Image: TEST_IMAGE, Cmd: ['sleep', '300'], Labels: labels, HostConfig: { Binds: ['/etc:/host-etc:ro'] } });
  await container.start();
  await daemon!.waitForLog((l) => l.msg === 'container judged' && (l.container as { id: string }).id === container.id && (l.violations as Array<{ message: string }>).some((v) => v.message === 'SELinux relabel refused: the mount is a system directory'));
  const config = join(daemon!.dir, 'config.yaml');
  const mine = (stdout: string) => (JSON.parse(stdout) as CheckReport).findings.filter((f) => f.container.id === container.id && f.check === 'selinux-relabel');
  const forced = await dockwarden(['check', '--config', config, '--json']);
  t.equal(forced.code, 1);
  t.match(mine(forced.stdout), [{ severity: 'high', action: 'alert', message: 'SELinux relabel refused: the mount is a system directory', details: { reason: 'system-path', realSource: '/etc' } }]);
  const auto = await dockwarden(['check', '--config', config, '--json'], { DOCKWARDEN_SELINUX_ENABLED: 'auto' });
  t.same(mine(auto.stdout), [], 'no SELinux here: nothing to refuse');
});

t.test('auto on a host without SELinux: said once, nothing labelled', async (t) => {
  await daemon!.stop();
  daemon = spawnDaemon({ policy, dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  t.match(daemon.logs.filter((l) => l.msg === 'SELinux is not enabled on this host; volumes are not relabelled'), [{ selinux: { reason: 'selinuxfs is not mounted' } }]);
  const dir = join(root, 'auto');
  makeTree(dir, 1, 1);
  const container = await docker.createContainer({ name: name(), Image: TEST_IMAGE, Cmd: ['sleep', '300'], Labels: labels, HostConfig: { Binds: [`${dir}:/data`] } });
  await container.start();
  await daemon.waitForLog(judged(container.id));
  t.equal(readLabel(dir), null);
  t.notOk(daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('SELinux relabel')));
});
