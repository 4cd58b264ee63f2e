import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type Docker from 'dockerode';
import type { CheckReport } from '../../src/cli/check.js';
import { dockwarden } from '../helpers/cli.js';
import { judged, spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, docker, removeTestContainers, runContainer } from '../helpers/docker.js';
import { commitCopy } from '../helpers/images.js';
import { push, startRegistry, type TestRegistry } from '../helpers/registry.js';

/**
 * Runtime checks end to end (docs/architecture.md "The pipeline"): real containers on the private dockerd, a real daemon
 * process, kills and stops through the real API. Privileged containers and execs use the test
 * runtime `dw-host-caps` (scripts/test-runtime/runc-host-caps): this host cannot grant
 * CAP_SYS_RESOURCE, which is all that runtime withholds.
 */

const SUITE = 'dw-test.suite=runtime';
/** Pushed to a registry on loopback: an image selector matches only names a repo digest proves. */
const EXCUSED_REPOSITORY = 'dw-test/excused';
const HOST_CAPS = 'dw-host-caps';

const POLICY = `version: 1
containers:
  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN], action: kill }
  privileged: { action: kill }
  host-namespaces: { namespaces: [pid], action: alert }
  docker-socket: { action: alert, paths: [${DOCKER_SOCKET}] }
  sensitive-mounts: { paths: [/etc], read-only-allowed: true, action: alert }
  devices: { action: alert }
  privileged-exec: { action: stop }
  exceptions:
    - match: { image: "127.0.0.1:*/${EXCUSED_REPOSITORY}:*" }
      allow: [capabilities]
`;

/** PID 1 exits on SIGTERM, so a stop does not wait out dockerd's 10 s for SIGKILL. */
const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

const start = (hostConfig: Docker.HostConfig, image?: string) =>
  runContainer({ cmd: SLEEPER, labels: { 'dw-test.suite': 'runtime' }, hostConfig, ...(image && { image }) });

const inspect = (id: string) => docker.getContainer(id).inspect();
const checksOf = (line: LogLine) => (line.violations as Array<{ check: string; action: string }>).map((v) => `${v.check}:${v.action}`);
const actedOn = (id: string, msg: string) => (l: LogLine) => l.msg === msg && (l.container as { id?: string } | undefined)?.id === id;

let daemon: DaemonProcess;
let registry: TestRegistry;
let registryDir: string;
/** Copies of the test image pushed to the registry: the excused one, and one with provenance and nothing else. */
let excusedImage: string;
let pulledImage: string;
const pushedImageIds: string[] = [];

/** A copy of the test image (a commit, so the shared one gets no repo digest of ours) pushed as `repository:1`. */
async function pushedCopy(repository: string): Promise<string> {
  pushedImageIds.push(await commitCopy({ 'dw-test.suite': 'runtime' }, { repo: `${registry.host}/${repository}`, tag: '1' }));
  await push(docker, `${registry.host}/${repository}:1`);
  return `${registry.host}/${repository}:1`;
}

t.before(async () => {
  await removeTestContainers(SUITE);
  registryDir = mkdtempSync(join(tmpdir(), 'dw-runtime-registry-'));
  registry = await startRegistry(registryDir);
  excusedImage = await pushedCopy(EXCUSED_REPOSITORY);
  pulledImage = await pushedCopy('dw-test/pulled');
  daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
});
t.teardown(async () => {
  await daemon.stop('SIGKILL');
  // Rules outlive the daemon by design; the next test file must not find this policy's table.
  await dockwarden(['firewall', 'remove'], { DOCKWARDEN_FIREWALL_BACKEND: 'nftables' });
  await removeTestContainers(SUITE);
  for (const id of pushedImageIds) await docker.getImage(id).remove({ force: true }).catch(() => {});
  await registry?.stop();
  if (registryDir) rmSync(registryDir, { recursive: true, force: true });
});

t.test('--cap-add SYS_ADMIN is killed, and restart policy always does not bring it back', async (t) => {
  const id = await start({ CapAdd: ['sys_admin'], RestartPolicy: { Name: 'always', MaximumRetryCount: 0 } });
  const killed = await daemon.waitForLog(actedOn(id, 'container killed'));
  t.same(killed.violations, [{ check: 'capabilities', severity: 'high', message: 'holds forbidden capabilities: SYS_ADMIN' }]);
  // dockerd would have restarted it within ~100 ms under `always`; give it far longer
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const after = await inspect(id);
  t.equal(after.State.Running, false, 'still down');
  t.equal(after.RestartCount, 0, 'never restarted');
  t.equal(after.HostConfig.RestartPolicy?.Name, 'no', 'restart policy set to no');
  t.equal(after.State.ExitCode, 137, 'SIGKILL');

  // An admin starting it again gets it judged, and killed, again.
  await docker.getContainer(id).start();
  await daemon.waitForLog((l) => actedOn(id, 'container killed')(l) && l !== killed);
  t.equal((await inspect(id)).State.Running, false);
});

t.test('--privileged is killed', async (t) => {
  const id = await start({ Privileged: true, Runtime: HOST_CAPS });
  const killed = await daemon.waitForLog(actedOn(id, 'container killed'));
  t.same(
    (killed.violations as Array<{ check: string }>).map((v) => v.check),
    ['capabilities', 'privileged'],
  );
  t.equal((await inspect(id)).State.Running, false);
});

t.test('an excepted image keeps its capability', async (t) => {
  const id = await start({ CapAdd: ['SYS_ADMIN'] }, excusedImage);
  const line = await daemon.waitForLog(judged(id));
  t.same(line.violations, [], 'excused from the capabilities check');
  // A kill would have been in the same task as the judgement; give it ample time anyway.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.equal((await inspect(id)).State.Running, true);
  t.notOk(daemon.logs.some(actedOn(id, 'container killed')));
});

t.test('host pid namespace, socket mount, /etc read-write, a device: each reported, none killed', async (t) => {
  const cases: Array<[string, Docker.HostConfig, string]> = [
    ['--pid host', { PidMode: 'host' }, 'host-namespaces:alert'],
    ['the engine socket', { Binds: [`${DOCKER_SOCKET}:/var/run/docker.sock`] }, 'docker-socket:alert'],
    ['/etc read-write', { Binds: ['/etc:/host-etc'] }, 'sensitive-mounts:alert'],
    ['a device', { Devices: [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/zero', CgroupPermissions: 'rwm' }] }, 'devices:alert'],
  ];
  for (const [what, hostConfig, expected] of cases) {
    const id = await start(hostConfig);
    const line = await daemon.waitForLog(judged(id));
    t.same(checksOf(line), [expected], what);
    t.equal((await inspect(id)).State.Running, true, `${what}: alert only, still running`);
  }
  const readOnly = await start({ Binds: ['/etc:/host-etc:ro'] });
  t.same(checksOf(await daemon.waitForLog(judged(readOnly))), [], '/etc read-only is allowed by this policy');
});

t.test('docker exec --privileged is caught from its exec event; the container is stopped (killed if its process is read while it runs)', async (t) => {
  const id = await start({ Runtime: HOST_CAPS });
  await daemon.waitForLog(judged(id));
  // A healthcheck-like plain exec first: not a violation.
  await execIn(id, ['true'], false);
  const exec = await execIn(id, ['sh', '-c', 'exit 0'], true);
  // Killed instead when the daemon reads the exec's process while it still runs: it holds SYS_ADMIN.
  const ended = await daemon.waitForLog((l) => actedOn(id, 'container stopped')(l) || actedOn(id, 'container killed')(l));
  t.ok((ended.violations as Array<{ check: string }>).some((v) => v.check === 'privileged-exec'));
  const line = daemon.logs.find((l) => judged(id)(l) && checksOf(l).includes('privileged-exec:stop'));
  t.ok(line, 'the judgement names the check');
  t.equal((await inspect(id)).State.Running, false);
  t.equal((await docker.getExec(exec).inspect()).ProcessConfig.privileged, true, 'dockerd agrees it was privileged');
});

t.test('audit mode kills nothing and says so', async (t) => {
  const audit = spawnDaemon({ policy: POLICY.replace('version: 1', 'version: 1\nmode: audit'), dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  t.teardown(() => audit.stop('SIGKILL'));
  // Only the audit daemon may judge this one: stop the enforcing daemon first.
  await daemon.stop('SIGKILL');
  await audit.waitForLog((l) => l.msg === 'reconciled');
  const id = await start({ CapAdd: ['SYS_ADMIN'] });
  const left = await audit.waitForLog(actedOn(id, 'audit mode: container left running'));
  t.equal(left.action, 'kill', 'names what enforce mode would have done');
  t.equal((await inspect(id)).State.Running, true);
  t.equal(await audit.stop(), 0);
  daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, extraConfig: 'firewall:\n  backend: nftables' });
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  t.equal((await inspect(id)).State.Running, false, 'an enforcing daemon kills it at its first reconcile');
});

t.test('dockwarden check: a table, exit 1 with violations, 0 clean, 2 on error; --json', async (t) => {
  await daemon.stop('SIGKILL'); // check judges, it must not race a daemon that acts
  await removeTestContainers(SUITE);
  // `excused.yaml`: every container is excused, so no container on this engine can violate it
  const excused = 'version: 1\ncontainers:\n  privileged: { action: kill }\n  exceptions:\n    - { match: { container: "*" }, allow: [privileged] }\n';
  const dir = t.testdir({ 'policy.yaml': POLICY, 'excused.yaml': excused, 'bad.yaml': 'version: 1\ncontainers:\n  privileged: { action: maim }\n' });
  const env = { DOCKWARDEN_POLICY: `${dir}/policy.yaml`, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET };
  const suiteOnly = (findings: CheckReport['findings'], ids: string[]) => findings.filter((f) => ids.includes(f.container.id));

  const plain = await start({});
  const clean = await dockwarden(['check', '--json'], env);
  t.same(suiteOnly(JSON.parse(clean.stdout).findings, [plain]), [], 'a default container has no findings');

  const bad = await start({ CapAdd: ['NET_ADMIN'], PidMode: 'host' });
  const json = await dockwarden(['check', '--json'], env);
  t.equal(json.code, 1);
  const findings = suiteOnly(JSON.parse(json.stdout).findings, [bad]);
  t.same(
    findings.map((f) => [f.check, f.severity, f.action]),
    [['capabilities', 'high', 'kill'], ['host-namespaces', 'high', 'alert']],
  );
  t.equal((await inspect(bad)).State.Running, true, 'check acts on nothing');

  const text = await dockwarden(['check'], env);
  t.equal(text.code, 1);
  t.match(text.stdout, /^CONTAINER +CHECK +SEVERITY +ACTION +WHY\n/);
  t.match(text.stdout, new RegExp(`dw-test-\\S+ \\(${bad.slice(0, 12)}\\) +capabilities +high +kill +holds forbidden capabilities: NET_ADMIN`));
  t.match(text.stdout, /\d+ running containers? checked against .*policy\.yaml \(enforce\): \d+ violations? in \d+ containers?\nprivileged execs: [^\n]+\n$/);

  const none = await dockwarden(['check'], { ...env, DOCKWARDEN_POLICY: `${dir}/excused.yaml` });
  t.equal(none.code, 0, 'exit 0 when nothing violates');
  t.match(none.stdout, /^\d+ running containers? checked against .*excused\.yaml \(enforce\): no violations\n$/);

  const invalid = await dockwarden(['check'], { ...env, DOCKWARDEN_POLICY: `${dir}/bad.yaml` });
  t.equal(invalid.code, 2);
  t.match(invalid.stderr, /bad\.yaml:3:25: containers\.privileged\.action: "maim" is not allowed here; expected one of: alert, stop, kill/);
  const unreachable = await dockwarden(['check'], { ...env, DOCKWARDEN_DOCKER_SOCKET: '/run/dw-test/no-such.sock' });
  t.equal(unreachable.code, 2);
  t.match(unreachable.stderr, /no-such\.sock/);
});

t.test('the example policies: a default docker run passes both; policy.strict.yaml wants a pulled image', async (t) => {
  const examples = resolve(import.meta.dirname, '../../config');
  const findingsFor = async (policyFile: string, id: string) => {
    const result = await dockwarden(['check', '--json'], { DOCKWARDEN_POLICY: join(examples, policyFile), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
    return (JSON.parse(result.stdout) as CheckReport).findings.filter((f) => f.container.id === id).map((f) => `${f.check}: ${f.message}`);
  };
  // What the strict policy's CIS checks find on any default `docker run` (of an image without HEALTHCHECK).
  const cisDefaults = [
    'read-only-root: has a writable root filesystem (no --read-only)',
    "healthcheck: has no healthcheck, neither its own nor its image's",
    "default-bridge: is attached to Docker's default bridge network",
    'images.healthcheck: image has no healthcheck (HEALTHCHECK)',
  ];
  const plain = await start({}, pulledImage);
  t.same(await findingsFor('policy.yaml', plain), []);
  t.same(await findingsFor('policy.strict.yaml', plain), cisDefaults, "Docker's default capabilities are not forbidden unless the admin asks");
  const local = await start({ CapDrop: ['SETPCAP', 'AUDIT_WRITE'] });
  t.same(await findingsFor('policy.yaml', local), [], 'the demo policy runs the locally built test image');
  t.match(
    await findingsFor('policy.strict.yaml', local),
    [...cisDefaults.slice(0, 3), /^image: image "docker\.io\/dw-test\/busybox:1" not allowed: the image has no repo digest/, cisDefaults[3]!],
    'the strict one does not',
  );
});

async function execIn(id: string, cmd: string[], privileged: boolean): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, Privileged: privileged, AttachStdout: false, AttachStderr: false });
  await exec.start({ Detach: true });
  return exec.id;
}
