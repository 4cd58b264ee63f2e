import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, TEST_IMAGE, TEST_LABEL, docker, ensureTestDocker, removeTestContainers } from '../helpers/docker.js';

/**
 * The CIS checks (checks/cis-runtime.ts, checks/image-hygiene.ts) on real containers of the test
 * engine: one well-configured container per image, and one container per case that differs from it
 * in one thing, all judged by one `dockwarden check --json`; then root execs seen by a daemon from
 * their exec events.
 */

const run = promisify(execFile);
const SUITE = 'dw-test.suite=cis';
const LABELS = { [TEST_LABEL]: '1', 'dw-test.suite': 'cis' };
const NEW_CHECKS = [
  'read-only-root', 'restart-policy', 'wildcard-bind', 'privileged-ports', 'mount-propagation', 'cgroup-parent', 'healthcheck',
  'ulimits', 'label-disabled', 'root-exec', 'default-bridge', 'images.latest-tag', 'images.healthcheck',
];
const POLICY = `version: 1
containers:
${NEW_CHECKS.filter((c) => !c.startsWith('images.')).map((c) => `  ${c}: { action: alert }`).join('\n')}
images:
  latest-tag: { action: alert }
  healthcheck: { action: alert }
`;

const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];
/** A healthcheck that runs soon and often, so its execs exist by the time they are looked for. */
const HEALTHCHECK = { Test: ['CMD', 'true'], Interval: 1_000_000_000 };

let healthyImage: string;
/** The healthy image with a second name for uid 0 in its /etc/passwd. */
let toorImage: string;
let scratch: string;
let sharedDir: string;

t.before(async () => {
  await ensureTestDocker();
  await removeTestContainers(SUITE);
  // An image with a HEALTHCHECK of its own, also tagged :latest (a commit: the shared test image gets no name of ours).
  const base = await docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], Labels: LABELS });
  const { Id } = (await base.commit({ changes: 'HEALTHCHECK --interval=1s CMD true\nLABEL dw-test.suite=cis', repo: 'dw-test/cis-healthy', tag: '1' })) as { Id: string };
  await base.remove({ force: true });
  healthyImage = Id;
  await docker.getImage(Id).tag({ repo: 'dw-test/cis-latest', tag: 'latest' });
  const toor = await docker.createContainer({ Image: healthyImage, Cmd: ['sh', '-c', 'echo toor:x:0:0::/root:/bin/sh >> /etc/passwd'], Labels: LABELS });
  await toor.start();
  await toor.wait();
  toorImage = ((await toor.commit({ changes: 'LABEL dw-test.suite=cis' })) as { Id: string }).Id;
  await toor.remove({ force: true });
  // A shared mount of our own to bind from: dockerd refuses `rshared` on a source whose mount is private (this host's / is).
  scratch = mkdtempSync(join(tmpdir(), 'dw-cis-'));
  sharedDir = join(scratch, 'shared');
  await run('mkdir', [sharedDir]);
  await run('mount', ['--bind', sharedDir, sharedDir]);
  await run('mount', ['--make-shared', sharedDir]);
});

t.teardown(async () => {
  await removeTestContainers(SUITE);
  if (toorImage) await docker.getImage(toorImage).remove({ force: true }).catch(() => {});
  if (healthyImage) await docker.getImage(healthyImage).remove({ force: true }).catch(() => {});
  if (sharedDir) await run('umount', [sharedDir]).catch(() => {});
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

interface Case {
  readonly image?: string;
  readonly config?: Partial<Docker.ContainerCreateOptions>;
  readonly host?: Docker.HostConfig;
}

/**
 * Well configured: read-only, bounded restarts, a healthcheck, no ports, not root, and not on the
 * default bridge: on no network (a network of its own would route a block of the shared test engine's
 * pool, which `scripts/test-env.sh up` refuses while it exists).
 */
async function start({ image = healthyImage, config = {}, host = {} }: Case): Promise<string> {
  const container = await docker.createContainer({
    Image: image,
    Cmd: SLEEPER,
    User: '1000',
    Labels: LABELS,
    ...config,
    HostConfig: { ReadonlyRootfs: true, RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 }, NetworkMode: 'none', ...host },
  });
  await container.start();
  return container.id;
}

/** `cmd` detached; `check` sees an exec while it runs (dockerd drops a finished one from `ExecIDs`), the daemon from its event. */
async function execAs(id: string, user: string, cmd = ['true']): Promise<void> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, User: user, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
}

/** Starts at most a few containers at once: the test engine is shared, and so are the machine's two cores. */
async function inParallel<T>(tasks: ReadonlyArray<() => Promise<T>>, width = 6): Promise<T[]> {
  const results: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

/** Polls a condition of the container until it holds; fails the wait after `ms`. */
async function until(id: string, holds: (inspect: Docker.ContainerInspectInfo) => boolean, ms = 20_000): Promise<Docker.ContainerInspectInfo> {
  const deadline = Date.now() + ms;
  for (;;) {
    const inspect = await docker.getContainer(id).inspect();
    if (holds(inspect)) return inspect;
    if (Date.now() > deadline) throw new Error(`condition not reached on ${id} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Ports are published on a network: the default bridge, which the case then also fails. */
const BRIDGE = { NetworkMode: 'bridge' };

/** One privileged host port a test on this machine is unlikely to hold. */
const privilegedPort = 900 + (process.pid % 100);

t.test('each check on one container that differs from a well-configured one in one thing; one check --json judges them all', async (t) => {
  const cases: Array<[string, Case, string[]]> = [
    ['well configured', {}, []],
    ['the test image (no HEALTHCHECK), with a --health-cmd', { image: TEST_IMAGE, config: { Healthcheck: HEALTHCHECK } }, ['images.healthcheck']],
    ['the test image, no healthcheck at all', { image: TEST_IMAGE }, ['healthcheck', 'images.healthcheck']],
    ['--no-healthcheck', { config: { Healthcheck: { Test: ['NONE'] } } }, ['healthcheck']],
    ['a writable root', { host: { ReadonlyRootfs: false } }, ['read-only-root']],
    ['--restart always', { host: { RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } } }, ['restart-policy']],
    ['--restart unless-stopped', { host: { RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } } }, ['restart-policy']],
    ['--restart on-failure (forever)', { host: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 0 } } }, ['restart-policy']],
    ['--restart on-failure:6', { host: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 6 } } }, ['restart-policy']],
    ['--restart on-failure:5', { host: { RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 5 } } }, []],
    ['--restart no', { host: { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } } }, []],
    ['-p 80 (every address)', { config: { ExposedPorts: { '80/tcp': {} } }, host: { ...BRIDGE, PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] } } }, ['wildcard-bind', 'default-bridge']],
    ['-p 127.0.0.1::80', { config: { ExposedPorts: { '80/tcp': {} } }, host: { ...BRIDGE, PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } } }, ['default-bridge']],
    [`-p 127.0.0.1:${privilegedPort}:80`, { config: { ExposedPorts: { '80/tcp': {} } }, host: { ...BRIDGE, PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: String(privilegedPort) }] } } }, ['privileged-ports', 'default-bridge']],
    ['-v shared:/data:rshared', { host: { Binds: [`${sharedDir}:/data:rshared`] } }, ['mount-propagation']],
    ['-v shared:/data:rslave', { host: { Binds: [`${sharedDir}:/data:rslave`] } }, []],
    ['-v shared:/data (rprivate)', { host: { Binds: [`${sharedDir}:/data`] } }, []],
    ['--cgroup-parent', { host: { CgroupParent: '/dw-cis-test' } }, ['cgroup-parent']],
    ['--ulimit nofile', { host: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }] } }, ['ulimits']],
    ['--security-opt label=disable', { host: { SecurityOpt: ['label=disable'] } }, ['label-disabled']],
    ['--security-opt label:disable', { host: { SecurityOpt: ['label:disable'] } }, ['label-disabled']],
    ['--security-opt label=type:container_t', { host: { SecurityOpt: ['label=type:container_t'] } }, []],
    ['the default bridge', { host: BRIDGE }, ['default-bridge']],
    ['dw-test/cis-latest (untagged)', { image: 'dw-test/cis-latest' }, ['images.latest-tag']],
    ['dw-test/cis-latest:latest', { image: 'dw-test/cis-latest:latest' }, ['images.latest-tag']],
    ['dw-test/cis-healthy:1', { image: 'dw-test/cis-healthy:1' }, []],
  ];
  // Execs (running, so inspect lists them): as root by --user, and with no --user in a container whose user is root or is not.
  const execs: Array<[string, Case, string | null, string[]]> = [
    ['exec --user root', {}, 'root', ['root-exec']],
    ['exec --user 0:0', {}, '0:0', ['root-exec']],
    ['exec --user toor (uid 0 in the image)', { image: toorImage }, 'toor', ['root-exec']],
    ["exec as the container's user 1000", {}, '', []],
    ['exec in a root container', { config: { User: '' } }, '', ['root-exec']],
    // A root container whose only execs are its healthcheck's (dockerd runs them as the container's user).
    ["a root container's healthcheck execs", { config: { User: '' } }, null, []],
  ];
  const started = await inParallel([
    ...cases.map(([what, c, expected]) => async () => [what, await start(c), expected] as const),
    ...execs.map(([what, c, user, expected]) => async () => {
      const id = await start(c);
      if (user !== null) await execAs(id, user, ['sleep', '60']);
      return [what, id, expected] as const;
    }),
  ]);
  const byId = (what: string) => started.find(([w]) => w === what)![1];
  const health = await until(byId("a root container's healthcheck execs"), (i) => (i.State.Health?.Log?.length ?? 0) > 0 && (i.ExecIDs?.length ?? 0) > 0);

  const dir = t.testdir({ 'policy.yaml': POLICY });
  const result = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.equal(result.code, 1, result.stderr);
  const report = JSON.parse(result.stdout) as CheckReport;
  const findingsOf = (id: string) => report.findings.filter((f) => f.container.id === id && NEW_CHECKS.includes(f.check));
  for (const [what, id, expected] of started) t.same(findingsOf(id).map((f) => f.check).sort(), [...expected].sort(), what);

  t.ok((health.ExecIDs?.length ?? 0) > 0, 'the healthcheck execs were there to be judged');
  t.same(findingsOf(byId('a writable root'))[0]!.details, { judgedOn: 'mount table' }, "the running container's mount table");
  t.same(findingsOf(byId('-v shared:/data:rshared'))[0]!.details.mounts, [{ destination: '/data', propagation: 'rshared', judgedOn: 'mount table' }]);
  t.match(findingsOf(byId('exec --user root'))[0]!.details.execs, [{ command: ['sleep', '60'], user: 'root', containerUser: '1000', running: true }]);
  t.match(findingsOf(byId('exec --user toor (uid 0 in the image)'))[0]!.details.execs, [{ user: 'toor', uid: { real: 0, effective: 0 }, judgedOn: 'process' }], "the running exec's uids");
  t.same(findingsOf(byId('the default bridge'))[0]!.details.network, 'bridge');
  t.equal(findingsOf(byId('dw-test/cis-latest (untagged)'))[0]!.message, 'was created from an untagged image reference (:latest)');
});

t.test('a root exec is seen by the daemon from its exec event', async (t) => {
  await removeTestContainers(SUITE); // a quick first reconcile
  const daemon = spawnDaemon({ policy: 'version: 1\ncontainers:\n  root-exec: { action: alert }\n', dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(async () => {
    await daemon.stop('SIGKILL');
    await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  const id = await start({});
  await daemon.waitForLog(judged(id));
  await execAs(id, '');
  await execAs(id, 'root');
  const rootExec = (l: LogLine) => judged(id)(l) && (l.violations as Array<{ check: string }>).some((v) => v.check === 'root-exec');
  const line = await daemon.waitForLog(rootExec);
  t.same((line.violations as Array<{ check: string; message: string }>).filter((v) => v.check === 'root-exec'), [
    { check: 'root-exec', action: 'alert', message: 'ran 1 exec as root' },
  ], "only the exec as root counts, not the one as the container's user");
});
