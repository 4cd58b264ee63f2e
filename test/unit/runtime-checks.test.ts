import t from 'tap';
import { configuredCapabilities, type Capability } from '../../src/domain/capabilities.js';
import { runtimeViolations } from '../../src/domain/checks/runtime.js';
import type { MountFacts } from '../../src/domain/facts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

function policy(containers: string): Policy {
  const result = parsePolicy(`version: 1\ncontainers:\n${containers}`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

/** The check ids raised, each with its action. */
const raised = (p: Policy, ...args: Parameters<typeof makeFacts>) => runtimeViolations(p.containers, makeFacts(...args)).map((v) => `${v.check}:${v.action}`);
const only = (p: Policy, ...args: Parameters<typeof makeFacts>) => {
  const violations = runtimeViolations(p.containers, makeFacts(...args));
  if (violations.length !== 1) throw new Error(`expected one violation, got ${JSON.stringify(violations)}`);
  return violations[0]!;
};

const bind = (source: string, destination: string, rw = true, realSource = source): MountFacts => ({
  type: 'bind', source, realSource, destination, rw, mode: rw ? '' : 'ro', name: '', driver: '', hostPaths: [realSource], backing: null, device: '', unresolved: null,
});

const ALL_CHECKS = policy(`  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN, SYS_PTRACE], action: kill }
  privileged: { action: kill }
  host-namespaces: { namespaces: [pid, net, ipc, uts, userns], action: alert }
  docker-socket: { action: kill, paths: [/run/dw-test/docker.sock] }
  sensitive-mounts: { paths: [/, /etc, /proc], action: stop }
  devices: { action: alert, allowed: [/dev/fuse] }
  privileged-exec: { action: alert }
`);

t.test('a default docker run passes every check of the example set', async (t) => {
  t.same(raised(ALL_CHECKS), []);
});

t.test('capabilities: configured or effective, normalised, severity and action from the policy', async (t) => {
  const caps = (add: string[], drop: string[] = []) => ({ added: add, dropped: drop, configured: configuredCapabilities(add, drop, false), effective: null });
  const v = only(ALL_CHECKS, { capabilities: caps(['sys_admin', 'CAP_NET_ADMIN']) });
  t.equal(v.check, 'capabilities');
  t.equal(v.severity, 'high', 'the check default severity');
  t.equal(v.action, 'kill');
  t.equal(v.message, 'holds forbidden capabilities: SYS_ADMIN, NET_ADMIN');
  t.same(v.details, { capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'], configured: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN'], effective: null }, 'effective null: judged on configuration');

  // --cap-add ALL grants everything; --cap-drop ALL --cap-add SYS_PTRACE only that one
  t.same(only(ALL_CHECKS, { capabilities: caps(['ALL']) }).details.capabilities, ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE']);
  t.same(only(ALL_CHECKS, { capabilities: caps(['SYS_PTRACE'], ['ALL']) }).details.capabilities, ['CAP_SYS_PTRACE']);
  t.same(raised(ALL_CHECKS, { capabilities: caps(['ALL'], ['SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE']) }), []);

  // the process holds what the configuration does not show (file capabilities, a runtime's own grant)
  const configured = configuredCapabilities([], [], false);
  const fromProc = only(ALL_CHECKS, { capabilities: { added: [], dropped: [], configured, effective: [...configured, 'CAP_SYS_ADMIN'] } });
  t.same(fromProc.details, {
    capabilities: ['CAP_SYS_ADMIN'],
    configured: [],
    effective: ['CAP_SYS_ADMIN'],
    processes: [{ pid: 4242, comm: 'nginx', capabilities: ['CAP_SYS_ADMIN'] }],
  });
});

const DEFAULT_CAPS = configuredCapabilities([], [], false);
const ALL_CAPS = configuredCapabilities([], [], true);
const proc = (pid: number, comm: string, effective: readonly Capability[], bounding: readonly Capability[] = effective) => ({ pid, comm, effective, bounding });

t.test("capabilities: every process's CapEff counts, not only init's; the details name who holds what", async (t) => {
  // init is clean; a background child of a privileged exec holds everything
  const processes = [proc(100, 'sh', DEFAULT_CAPS), proc(150, 'sleep', ALL_CAPS)];
  const v = runtimeViolations(ALL_CHECKS.containers, makeFacts({ processes })).find((x) => x.check === 'capabilities')!;
  t.equal(v.message, 'holds forbidden capabilities: SYS_ADMIN, NET_ADMIN, SYS_PTRACE');
  t.same(v.details, {
    capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'],
    configured: [],
    effective: [],
    processes: [{ pid: 150, comm: 'sleep', capabilities: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'] }],
  });
  t.same(raised(ALL_CHECKS, { processes: [proc(100, 'sh', DEFAULT_CAPS), proc(101, 'worker', [])] }), [], 'processes within the configuration');
});

t.test('details name at most 16 processes and then say how many there are', async (t) => {
  const many = Array.from({ length: 40 }, (_, i) => proc(1000 + i, `p${i}`, ALL_CAPS));
  const v = runtimeViolations(ALL_CHECKS.containers, makeFacts({ processes: many })).find((x) => x.check === 'capabilities')!;
  t.equal((v.details.processes as unknown[]).length, 16);
  t.equal(v.details.processCount, 40);
});

t.test('privileged', async (t) => {
  const all = configuredCapabilities([], [], true);
  const found = raised(ALL_CHECKS, { privileged: true, capabilities: { added: [], dropped: [], configured: all, effective: null } });
  t.same(found, ['capabilities:kill', 'privileged:kill'], 'privileged also holds every forbidden capability');
  t.equal(only(policy('  privileged: { action: stop, severity: medium }\n'), { privileged: true }).severity, 'medium');
});

t.test('host namespaces: only those the policy lists', async (t) => {
  const ns = { pid: true, net: true, ipc: false, uts: false, userns: false, cgroup: true };
  const v = only(ALL_CHECKS, { hostNamespaces: ns });
  t.equal(v.message, "shares the host's pid, net namespaces");
  t.same(v.details, { namespaces: ['pid', 'net'] }, 'cgroup is not listed in the policy');
  t.same(raised(policy('  host-namespaces: { namespaces: [uts], action: alert }\n'), { hostNamespaces: ns }), []);
});

t.test('docker socket: the socket, a directory holding it, symlinks resolved', async (t) => {
  const socket = (mount: MountFacts) => raised(ALL_CHECKS, { mounts: [mount] });
  t.same(socket(bind('/var/run/docker.sock', '/var/run/docker.sock')), ['docker-socket:kill']);
  t.same(socket(bind('/var/run/docker.sock', '/s', false)), ['docker-socket:kill'], 'read-only is no protection: the API still answers');
  t.same(socket(bind('/run', '/host-run')), ['docker-socket:kill'], 'the directory that holds it');
  t.same(socket(bind('/srv/app/api.sock', '/s', true, '/run/containerd/containerd.sock')), ['docker-socket:kill'], 'through a symlink');
  t.same(socket(bind('/run/dw-test/docker.sock', '/s')), ['docker-socket:kill'], 'a path the policy adds');
  t.same(socket(bind('/run/user', '/x')), [], 'a sibling directory');
  t.same(socket(bind('/run/docker.sockets', '/x')), [], 'a name that only starts the same');
  t.same(socket({ type: 'tmpfs', source: '', realSource: '', destination: '/run', rw: true, mode: '', name: '', driver: '', hostPaths: [], backing: null, device: '', unresolved: null }), [], 'tmpfs has no host path');
  const v = only(ALL_CHECKS, { mounts: [bind('/var/run/docker.sock', '/sock')] });
  t.equal(v.message, 'mounts the container engine socket: /var/run/docker.sock (read-write)');
  t.same(v.details.mounts, [{ source: '/var/run/docker.sock', realSource: '/var/run/docker.sock', hostPaths: ['/var/run/docker.sock'], destination: '/sock', rw: true }]);
});

t.test('the engine socket itself is judged by docker-socket alone; a directory holding it by both', async (t) => {
  const p = policy(`  docker-socket: { action: kill }
  sensitive-mounts: { paths: [/run, /var/run], action: alert }
  exceptions:
    - { match: { container: "portainer" }, allow: [docker-socket] }
`);
  t.same(raised(p, { mounts: [bind('/var/run/docker.sock', '/var/run/docker.sock')] }), ['docker-socket:kill'], 'one finding for the socket');
  t.same(raised(p, { name: 'portainer', mounts: [bind('/var/run/docker.sock', '/var/run/docker.sock')] }), [], 'and excused by its exception alone');
  t.same(raised(p, { mounts: [bind('/run', '/host-run')] }), ['docker-socket:kill', 'sensitive-mounts:alert'], 'a directory exposes more than the socket');
  t.same(raised(policy('  sensitive-mounts: { paths: [/run], action: alert }\n'), { mounts: [bind('/run/docker.sock', '/s')] }), ['sensitive-mounts:alert'], 'without the docker-socket check, sensitive-mounts still sees it');
});

t.test('sensitive mounts: listed paths, their ancestors and what is below them, read-only allowed on request', async (t) => {
  t.same(raised(ALL_CHECKS, { mounts: [bind('/etc', '/host-etc')] }), ['sensitive-mounts:stop']);
  t.same(raised(ALL_CHECKS, { mounts: [bind('/etc/cron.d', '/c')] }), ['sensitive-mounts:stop'], 'below a listed path: root through cron');
  t.same(raised(ALL_CHECKS, { mounts: [bind('/srv/data', '/data')] }), [], '/ covers only itself, not everything below it');
  t.same(raised(ALL_CHECKS, { mounts: [bind('/etcetera', '/data')] }), [], 'a name that only starts the same');
  const root = [bind('/', '/host', false)];
  t.same(raised(ALL_CHECKS, { mounts: root }), ['docker-socket:kill', 'sensitive-mounts:stop'], 'the root holds the socket too');
  const sensitive = runtimeViolations(ALL_CHECKS.containers, makeFacts({ mounts: root }))[1]!;
  t.equal(sensitive.message, 'mounts sensitive host paths: /, /etc, /proc (read-only)', 'the root holds every listed path');
  const readOnlyOk = policy('  sensitive-mounts: { paths: [/etc], read-only-allowed: true, action: alert }\n');
  t.same(raised(readOnlyOk, { mounts: [bind('/etc', '/e', false)] }), []);
  t.same(raised(readOnlyOk, { mounts: [bind('/etc', '/e', true)] }), ['sensitive-mounts:alert']);
  t.same(raised(readOnlyOk, { mounts: [bind('/srv/etc-link', '/e', true, '/etc')] }), ['sensitive-mounts:alert'], 'symlink resolved');
});

t.test('sensitive mounts: allowed paths excuse what is at or below them from the listed paths that contain them', async (t) => {
  const p = policy('  sensitive-mounts: { paths: [/etc, /var/lib/docker, /srv/secret], allowed: [/etc/ssl/certs, /var/lib/docker/volumes, /srv], action: alert }\n');
  t.same(raised(p, { mounts: [bind('/etc/ssl/certs', '/c')] }), []);
  t.same(raised(p, { mounts: [bind('/etc/ssl', '/c')] }), ['sensitive-mounts:alert'], 'above the allowed path');
  t.same(raised(p, { mounts: [bind('/var/lib/docker/volumes/db/_data', '/v')] }), [], 'a volume');
  t.same(raised(p, { mounts: [bind('/var/lib/docker/containers', '/c')] }), ['sensitive-mounts:alert'], 'elsewhere in the data root');
  t.same(raised(p, { mounts: [bind('/srv', '/s')] }), ['sensitive-mounts:alert'], 'an allowed path holding a more specific listed one');
  t.same(raised(p, { mounts: [bind('/srv/www', '/s')] }), []);
});

t.test('mount checks judge every host path the mount really shows, and unresolved mounts fail-safe', async (t) => {
  const volume = (hostPaths: string[], unresolved: string | null = null): MountFacts => ({
    ...bind('/var/lib/docker/volumes/v/_data', '/h'),
    type: 'volume',
    name: 'v',
    driver: 'local',
    hostPaths,
    backing: 'bind',
    device: hostPaths[0] ?? '',
    unresolved,
  });
  const p = policy('  docker-socket: { action: kill }\n  sensitive-mounts: { paths: [/etc], allowed: [/var/lib/docker/volumes], action: alert }\n');
  t.same(raised(p, { mounts: [volume(['/srv/data'])] }), []);
  t.same(raised(p, { mounts: [volume(['/etc'])] }), ['sensitive-mounts:alert'], 'a volume bound to /etc');
  t.same(raised(p, { mounts: [volume(['/tmp/x/hardlink', '/run/docker.sock'])] }), ['docker-socket:kill'], 'a file with the socket identity');
  const unresolved = runtimeViolations(p.containers, makeFacts({ mounts: [volume([], 'the source did not resolve in time')] }));
  t.same(
    unresolved.map((v) => [v.check, v.message]),
    [
      ['docker-socket', 'mounts the container engine socket: 1 mount whose host path could not be resolved in time (judged fail-safe) (read-write)'],
      ['sensitive-mounts', 'mounts sensitive host paths: 1 mount whose host path could not be resolved in time (judged fail-safe) (read-write)'],
    ],
  );
  t.same((unresolved[1]!.details.mounts as Array<{ unresolved: string }>)[0]!.unresolved, 'the source did not resolve in time');
});

t.test('devices: anything not allowed', async (t) => {
  const device = (pathOnHost: string) => ({ pathOnHost, pathInContainer: pathOnHost, permissions: 'rwm' });
  t.same(raised(ALL_CHECKS, { devices: [device('/dev/fuse')] }), []);
  const v = only(ALL_CHECKS, { devices: [device('/dev/fuse'), device('/dev/sda'), device('/dev/mem')] });
  t.equal(v.message, 'is given 2 host devices not on the allowed list');
  t.same(v.details.devices, [device('/dev/sda'), device('/dev/mem')]);
});

t.test('privileged exec: a privileged exec is a violation, a healthcheck exec is not', async (t) => {
  const exec = (privileged: boolean, command: string[]) => ({ id: 'e1', privileged, command, user: '', running: false, uids: null });
  t.same(raised(ALL_CHECKS, { execs: [exec(false, ['/bin/sh', '-c', 'wget -q localhost'])] }), [], 'a healthcheck');
  const v = only(ALL_CHECKS, { execs: [exec(false, ['true']), exec(true, ['sh', '-c', 'mount /dev/sda1 /mnt'])] });
  t.equal(v.message, 'ran docker exec --privileged (1 process)');
  t.same(v.details.execs, [{ id: 'e1', command: ['sh', '-c', 'mount /dev/sda1 /mnt'], user: '', running: false }]);
});

t.test('privileged exec: a process whose bounding set exceeds the configuration is what a privileged exec leaves', async (t) => {
  // uid 1000 child of `docker exec --privileged -u 1000`: nothing effective, everything within reach
  const v = only(ALL_CHECKS, { processes: [proc(100, 'sh', DEFAULT_CAPS), proc(150, 'sleep', [], ALL_CAPS)] });
  t.equal(v.check, 'privileged-exec');
  t.equal(v.message, 'runs 1 process with capabilities beyond its configuration');
  const [child] = v.details.processes as Array<{ pid: number; comm: string; beyondConfiguration: string[] }>;
  t.same([child!.pid, child!.comm], [150, 'sleep']);
  t.ok(child!.beyondConfiguration.includes('CAP_SYS_MODULE') && !child!.beyondConfiguration.includes('CAP_CHOWN'), 'only what the configuration does not grant');
  // a privileged container's processes hold everything it was given: nothing beyond
  const privileged = { privileged: true, capabilities: { added: [], dropped: [], configured: ALL_CAPS, effective: ALL_CAPS } };
  t.same(raised(policy('  privileged-exec: { action: alert }\n'), { ...privileged, processes: [proc(1, 'init', ALL_CAPS)] }), []);
});

t.test('privileged exec: an exec event whose id an execID label hid is judged as privileged (fail-safe)', async (t) => {
  const v = only(ALL_CHECKS, { execHiddenByLabel: true });
  t.equal(v.message, 'ran an exec whose id its execID label hides from Docker events');
  t.same(v.details, { execHiddenByLabel: true });
});

t.test('no-new-privileges, seccomp, AppArmor, limits, root user', async (t) => {
  const p = policy(`  no-new-privileges: { action: alert }
  seccomp-unconfined: { action: stop }
  apparmor-unconfined: { action: alert }
  resource-limits: { require: [memory, pids, cpu], action: alert }
  root-user: { action: alert }
`);
  const security = { seccomp: 'default' as const, apparmor: 'docker-default', noNewPrivileges: true, labelOptions: [], seccompProfile: null };
  const confined = { security, resources: { memory: 1 << 28, pidsLimit: 100, cpus: 0.5, cpuShares: 0 }, user: '1000:1000' };
  t.same(raised(p, confined), []);
  t.same(raised(p, { ...confined, security: { ...security, noNewPrivileges: false } }), ['no-new-privileges:alert']);
  t.same(raised(p, { ...confined, security: { ...security, seccomp: 'unconfined' } }), ['seccomp-unconfined:stop']);
  t.same(raised(p, { ...confined, security: { ...security, seccomp: 'custom' } }), [], 'a custom profile is a profile');
  t.same(raised(p, { ...confined, security: { ...security, apparmor: 'unconfined' } }), ['apparmor-unconfined:alert']);
  t.same(raised(p, { ...confined, security: { ...security, apparmor: '' } }), [], 'no AppArmor on the host is not "unconfined"');
  const limits = only(p, { ...confined, resources: { memory: 0, pidsLimit: -1, cpus: 0.5, cpuShares: 0 } });
  t.equal(limits.message, 'has no memory, pids limit');
  for (const user of ['', 'root', '0', '0:0', 'root:staff', '00']) t.same(raised(p, { ...confined, user }), ['root-user:alert'], JSON.stringify(user));
  for (const user of ['1000', 'nobody', '65534:0', 'rooter']) t.same(raised(p, { ...confined, user }), [], JSON.stringify(user));
});

t.test('checks absent from the policy are off', async (t) => {
  const p = policy('  privileged: { action: kill }\n');
  t.same(raised(p, { hostNamespaces: { pid: true, net: true, ipc: true, uts: true, userns: true, cgroup: true }, mounts: [bind('/var/run/docker.sock', '/s')], user: '' }), []);
});

t.test('exceptions excuse the named checks for matching containers only', async (t) => {
  const p = policy(`  docker-socket: { action: kill }
  privileged: { action: kill }
  exceptions:
    - match: { image: "docker.io/portainer/portainer-ce:*" }
      allow: [docker-socket]
    - match: { container: "ci-*", label: { role: builder } }
      allow: [docker-socket, privileged]
`);
  const socket = [bind('/var/run/docker.sock', '/var/run/docker.sock')];
  const portainer = { reference: 'portainer/portainer-ce:2.21', id: 'sha256:1', repoTags: [], repoDigests: [`portainer/portainer-ce@sha256:${'1'.repeat(64)}`] };
  t.same(raised(p, { image: portainer, mounts: socket, privileged: true }), ['privileged:kill'], 'excused from the socket check only');
  t.same(raised(p, { image: { ...portainer, repoDigests: [] }, mounts: socket }), ['docker-socket:kill'], 'a local image tagged portainer/portainer-ce is not');
  t.same(raised(p, { mounts: socket }), ['docker-socket:kill'], 'another image is not excused');
  t.same(raised(p, { name: 'ci-7', labels: { role: 'builder' }, mounts: socket, privileged: true }), []);
  t.same(raised(p, { name: 'ci-7', mounts: socket, privileged: true }), ['privileged:kill', 'docker-socket:kill'], 'every field of the match must hold');
});

t.test('policy errors: unknown capabilities, checks and namespaces are located', async (t) => {
  const result = parsePolicy('version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN, SYS_ADMNI], action: kill }\n  exceptions:\n    - match: { container: x }\n      allow: [priviledged]\n', 'p.yaml');
  t.notOk(result.ok);
  if (result.ok) return;
  const messages = result.errors.map((e) => `${e.line}:${e.column}: ${e.message}`);
  t.match(messages[0], /^3:42: .*"SYS_ADMNI" is not a Linux capability/);
  t.match(messages[1], /^6:15: .*"priviledged" is not allowed here; expected one of: capabilities, privileged/);
});
