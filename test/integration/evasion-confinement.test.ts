import t from 'tap';
import { open, readFile, readdir, readlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type Docker from 'dockerode';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { DOCKER_SOCKET, TEST_IMAGE, docker, removeTestContainers, runContainer } from '../helpers/docker.js';

/**
 * Issue 13, "Devices, namespaces, confinement": ways a container author (API access, no root on the
 * host) gets around the device, namespace, seccomp, masked-path and root-user checks. Each container
 * is real, on the private test dockerd, and judged by the built `dockwarden check --json`.
 */

const SUITE = 'dw-test.suite=confinement';
const TOOR_IMAGE = 'dw-test/toor:1';
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

/** Only keys the checks had before issue 13, so the evasions below run against the unchanged code too. */
const POLICY = `version: 1
containers:
  devices: { action: alert }
  host-namespaces: { namespaces: [pid, net, ipc], action: alert }
  seccomp-unconfined: { action: alert }
  exceptions:
    - match: { container: "dwc-excused-*" }
      allow: [host-namespaces]
`;

const start = (hostConfig: Docker.HostConfig, extra: { name?: string; image?: string; user?: string } = {}) =>
  extra.user === undefined
    ? runContainer({ cmd: SLEEPER, labels: { 'dw-test.suite': 'confinement' }, hostConfig, ...extra })
    : runAs(extra.user, hostConfig, extra.image);

/** `runContainer` has no `User`; this is the same with one. */
async function runAs(user: string, hostConfig: Docker.HostConfig, image = TEST_IMAGE): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: SLEEPER,
    User: user,
    Labels: { 'dw-test': '1', 'dw-test.suite': 'confinement' },
    HostConfig: hostConfig,
  });
  await container.start();
  return container.id;
}

type Finding = CheckReport['findings'][number];

async function findings(id: string, policy = POLICY): Promise<Finding[]> {
  const dir = t.testdir({ 'policy.yaml': policy });
  const result = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: `${dir}/policy.yaml`, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  if (result.code === 2) throw new Error(`dockwarden check failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as CheckReport).findings.filter((f) => f.container.id === id);
}

const checksOf = (found: Finding[]) => found.map((f) => f.check);

async function execOut(id: string, cmd: string[]): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  await new Promise((resolve) => stream.on('end', resolve));
  // Docker's multiplexed stream: 8-byte frame headers; the payload is plain text here.
  const raw = Buffer.concat(chunks);
  let text = '';
  for (let at = 0; at + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(at + 4);
    text += raw.subarray(at + 8, at + 8 + size).toString('utf8');
    at += 8 + size;
  }
  return text;
}

t.before(async () => {
  await removeTestContainers(SUITE);
  // An image whose /etc/passwd names uid 0 `toor`: `--user toor` is root under another name.
  const builder = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sh', '-c', 'echo "toor:x:0:0:root:/root:/bin/sh" >> /etc/passwd'], Labels: { 'dw-test': '1', 'dw-test.suite': 'confinement' } });
  await builder.start();
  await builder.wait();
  await builder.commit({ repo: 'dw-test/toor', tag: '1' });
  await builder.remove();
});
t.teardown(async () => {
  await removeTestContainers(SUITE);
  await docker.getImage(TOOR_IMAGE).remove().catch(() => {});
});

/**
 * A host block device that root on the host can open (this machine refuses even root its system
 * disk, so not necessarily the disk), from /sys/dev/block.
 */
async function hostBlockDevice(): Promise<{ major: number; minor: number; name: string }> {
  for (const entry of await readdir('/sys/dev/block')) {
    const [major, minor] = entry.split(':').map(Number);
    const name = basename(await readlink(`/sys/dev/block/${entry}`));
    const readable = await open(`/dev/${name}`, 'r').then(
      (file) => file.close().then(() => true),
      () => false,
    );
    if (readable && major !== undefined && minor !== undefined) return { major, minor, name };
  }
  throw new Error('no block device root can open in /sys/dev/block');
}

t.test('--device-cgroup-rule granting a block device is a device grant', async (t) => {
  const disk = await hostBlockDevice();
  const rule = `b ${disk.major}:* rwm`;
  const id = await start({ DeviceCgroupRules: [rule] });
  // The premise: with the default CAP_MKNOD the container makes the node and opens the host's device.
  const read = (container: string) => execOut(container, ['sh', '-c', `mknod /tmp/disk b ${disk.major} ${disk.minor} && head -c 512 /tmp/disk >/dev/null && echo opened`]);
  t.equal(await read(id), 'opened\n', `the container opens ${disk.name}`);
  t.match(await read(await start({})), /Operation not permitted/, 'without the rule it cannot');

  const found = await findings(id);
  t.same(checksOf(found), ['devices']);
  t.match(found[0]?.details, { cgroupRules: [rule] });

  // Rules Docker grants anyway are no grant; an admin's allowed rule is not reported.
  const defaults = await start({ DeviceCgroupRules: ['c 1:3 rwm', 'b *:* m', 'c 136:* rw'] });
  t.same(checksOf(await findings(defaults)), [], "rules within Docker's defaults");
  const allowing = (allowed: string) => POLICY.replace('devices: { action: alert }', `devices: { action: alert, allowed-cgroup-rules: ["${allowed}"] }`);
  t.same(checksOf(await findings(id, allowing(`b ${disk.major}:* r`))), ['devices'], 'an allowed r does not cover the w asked for');
  t.same(checksOf(await findings(id, allowing(`b ${disk.major}:* rw`))), [], 'allowed r and w; m Docker grants anyway');
});

t.test('--security-opt systempaths=unconfined and a shortened MaskedPaths are unmasked-paths violations', async (t) => {
  const policy = POLICY.replace('  exceptions:', '  unmasked-paths: { action: alert }\n  exceptions:');
  // /proc is mounted read-write; Docker mounts /proc/sys over it read-only (busybox `test -w` is no help: root passes it).
  const writable = (id: string) => execOut(id, ['sh', '-c', 'grep -q " /proc/sys proc ro," /proc/mounts && echo read-only || echo writable']);
  // What `docker run --security-opt systempaths=unconfined` sends (dockerd takes it only in this form).
  const unconfined = await start({ MaskedPaths: [], ReadonlyPaths: [] });
  // The premise: /proc/sys (the host's kernel.core_pattern among it) is writable inside.
  t.equal(await writable(unconfined), 'writable\n', '/proc/sys not read-only');
  const found = await findings(unconfined, policy);
  t.same(checksOf(found), ['unmasked-paths']);
  t.equal((found[0]?.details.masked as string[]).length, 10, 'every masked path open');
  t.ok((found[0]?.details.readOnly as string[]).includes('/proc/sys'), '/proc/sys writable');

  const partial = await start({
    MaskedPaths: ['/proc/asound', '/proc/acpi', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
  });
  const partialFound = await findings(partial, policy);
  t.same(checksOf(partialFound), ['unmasked-paths'], 'the API can leave out one path');
  t.same(partialFound[0]?.details, { masked: ['/proc/kcore'], readOnly: [] });

  const plain = await start({});
  t.equal(await writable(plain), 'read-only\n');
  t.same(checksOf(await findings(plain, policy)), [], 'the defaults');
});

t.test('a custom seccomp profile that allows everything is unconfined', async (t) => {
  const allowAll = await start({ SecurityOpt: [`seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' })}`] });
  t.equal(/^Seccomp:\s*(\d)/m.exec(await execOut(allowAll, ['cat', '/proc/self/status']))?.[1], '2', 'the kernel sees a filter');
  t.same(checksOf(await findings(allowAll)), ['seccomp-unconfined']);

  // Denying something harmless does not make it a confinement.
  const token = { defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: ['getpgrp'], action: 'SCMP_ACT_ERRNO' }] };
  const logged = await start({ SecurityOpt: [`seccomp=${JSON.stringify(token)}`] });
  const found = await findings(logged);
  t.same(checksOf(found), ['seccomp-unconfined']);
  const denied = ['keyctl', 'add_key', 'request_key', 'kexec_load', 'kexec_file_load', 'mount', 'umount2', 'unshare', 'setns', 'bpf', 'perf_event_open', 'open_by_handle_at', 'init_module', 'finit_module', 'delete_module', 'reboot'];
  t.same(found[0]?.details, { seccomp: 'custom', defaultAction: 'SCMP_ACT_LOG', allows: denied });

  // A denylist that refuses what the default profile refuses is a confinement.
  const strict = await start({ SecurityOpt: [`seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: denied, action: 'SCMP_ACT_ERRNO' }] })}`] });
  t.same(checksOf(await findings(strict)), [], 'a denylist of what matters');
});

t.test('joining the namespaces of a host-namespace container shares the host namespace', async (t) => {
  const suffix = Math.random().toString(16).slice(2, 8);
  const host = `dwc-excused-${suffix}`;
  await start({ PidMode: 'host', NetworkMode: 'host', IpcMode: 'host' }, { name: host });
  t.same(checksOf(await findings((await docker.getContainer(host).inspect()).Id)), [], 'the host-namespace container itself is excused');

  const joiner = await start({ PidMode: `container:${host}`, NetworkMode: `container:${host}`, IpcMode: `container:${host}` });
  // The premise: it sees the host's processes.
  t.equal(await execOut(joiner, ['cat', '/proc/1/comm']), await readFile('/proc/1/comm', 'utf8'), "pid 1 is the host's init");
  const found = await findings(joiner);
  t.same(checksOf(found), ['host-namespaces']);
  t.match(found[0]?.message, "shares the host's pid, net, ipc namespaces");
  t.match(found[0]?.details, { namespaces: ['pid', 'net', 'ipc'], joined: [{ namespace: 'pid', through: [host] }] });

  // Two steps: a container joining the joiner (by id) is in the host's pid namespace too.
  const second = await start({ PidMode: `container:${joiner.slice(0, 12)}` });
  t.same(checksOf(await findings(second)), ['host-namespaces'], 'through a chain');

  // A private container joined is no host namespace.
  const privateOne = await start({ IpcMode: 'shareable' });
  const sibling = await start({ PidMode: `container:${privateOne}`, IpcMode: `container:${privateOne}`, NetworkMode: `container:${privateOne}` });
  t.same(checksOf(await findings(sibling)), [], "a private container's namespaces are private");

  // The host-namespace container removed: the joiner keeps running in the host's namespaces.
  await docker.getContainer(host).remove({ force: true });
  t.equal((await docker.getContainer(second).inspect()).State.Running, true, 'still running');
  const orphan = await findings(second);
  t.same(checksOf(orphan), ['host-namespaces'], 'judged on the process once the joined container is gone');
});

t.test('--user spellings of uid 0 run as root', async (t) => {
  const policy = POLICY.replace('  exceptions:', '  root-user: { action: alert }\n  exceptions:');
  for (const user of ['+0', '0:0', 'root', '00', 'toor', '0:1000']) {
    const id = await start({}, { user, image: TOOR_IMAGE });
    const found = await findings(id, policy);
    t.same(checksOf(found), ['root-user'], JSON.stringify(user));
    t.match(found[0]?.details, { user, uid: { real: 0, effective: 0, saved: 0, filesystem: 0 } }, `${JSON.stringify(user)}: judged on the process`);
  }
  const nobody = await start({}, { user: '65534', image: TOOR_IMAGE });
  t.same(checksOf(await findings(nobody, policy)), [], 'uid 65534');
});
