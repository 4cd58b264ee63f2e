import t from 'tap';
import { NO_PROCESSES } from '../helpers/facts.js';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { toContainerFacts, type ContainerInspect, type FactsInput } from '../../src/adapters/docker/facts.js';
import { CAPABILITIES, DOCKER_DEFAULT_CAPABILITIES } from '../../src/domain/capabilities.js';
import { DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS } from '../../src/domain/system-paths.js';

/** Captured from the test dockerd (Docker 20.10, cgroup v1) by test/fixtures/container-facts/capture.sh. */
interface Fixture {
  readonly command: string[];
  readonly inspect: ContainerInspect;
  readonly image: FactsInput['image'];
  readonly procStatus: string | null;
}

function fixture(name: string): Fixture {
  return JSON.parse(readFileSync(resolve(import.meta.dirname, '../fixtures/container-facts', `${name}.json`), 'utf8')) as Fixture;
}

const identity = (path: string) => path;

function factsOf(name: string, realpath = identity) {
  const { inspect, image, procStatus } = fixture(name);
  return toContainerFacts(inspect, { image, procStatus, realpath, execs: [], ...NO_PROCESSES });
}

/** The default fixture with some inspect fields replaced; no /proc status unless given. */
function variant(
  change: { host?: Partial<ContainerInspect['HostConfig']>; inspect?: Partial<ContainerInspect>; config?: Partial<ContainerInspect['Config']> },
  input: Partial<FactsInput> = {},
) {
  const base = fixture('default');
  const inspect: ContainerInspect = {
    ...base.inspect,
    ...change.inspect,
    Config: { ...base.inspect.Config, ...change.config },
    HostConfig: { ...base.inspect.HostConfig, ...change.host },
  };
  return toContainerFacts(inspect, { image: base.image, procStatus: null, realpath: identity, execs: [], ...NO_PROCESSES, ...input });
}

/** Mount facts without a mount view: the request's real path is all that is known. */
const requested = (realSource: string) => ({ hostPaths: [realSource], backing: null, device: '', unresolved: null });

const sorted = <T>(items: readonly T[]) => [...items].sort();
const DEFAULTS = sorted(DOCKER_DEFAULT_CAPABILITIES);

t.test('docker run (defaults)', async (t) => {
  const { inspect } = fixture('default');
  const bridge = inspect.NetworkSettings.Networks!['bridge']!;
  t.match(bridge, { NetworkID: /^[0-9a-f]{64}$/, IPAddress: /^10\.\d+\.\d+\.\d+$/, MacAddress: /^02:42:/ });
  const facts = factsOf('default');
  t.strictSame(
    { ...facts, labels: { ...facts.labels } },
    {
      id: inspect.Id,
      name: 'dw-fixture-default',
      image: { reference: 'dw-test/busybox:1', id: inspect.Image, repoTags: ['dw-test/busybox:1'], repoDigests: [] },
      labels: {},
      state: { running: true, status: 'running', pid: inspect.State.Pid, startedAt: inspect.State.StartedAt },
      ports: [],
      networks: [{ name: 'bridge', networkId: bridge.NetworkID, ipv4: bridge.IPAddress, ipv6: '', mac: bridge.MacAddress }],
      mounts: [],
      devices: [],
      capabilities: { added: [], dropped: [], configured: DEFAULTS, effective: DEFAULTS },
      privileged: false,
      // cgroup v1: dockerd's default cgroupns mode is `host`
      hostNamespaces: { pid: false, net: false, ipc: false, uts: false, userns: false, cgroup: true },
      security: { seccomp: 'default', apparmor: '', noNewPrivileges: false, labelOptions: [], seccompProfile: null },
      user: '',
      resources: { memory: 0, pidsLimit: 0, cpus: 0, cpuShares: 0 },
      restartPolicy: { name: 'no', maximumRetryCount: 0 },
      mountLabel: '',
      processLabel: '',
      execs: [],
      deviceCgroupRules: [],
      systemPaths: { masked: [...DOCKER_MASKED_PATHS], readOnly: [...DOCKER_READONLY_PATHS] },
      joinedNamespaces: [],
      processUids: { real: 0, effective: 0, saved: 0, filesystem: 0 },
      ...NO_PROCESSES,
      rootFilesystem: { readOnly: false, judgedOn: 'configuration' },
      cgroupParent: '',
      ulimits: [],
      healthcheck: { command: null, disabled: false, image: false },
      mountPropagation: [],
    },
  );
});

t.test('docker create: not running, no effective capabilities', async (t) => {
  const facts = factsOf('created');
  t.strictSame(facts.state, { running: false, status: 'created', pid: 0, startedAt: '0001-01-01T00:00:00Z' });
  t.equal(facts.capabilities.effective, null);
  t.strictSame(facts.capabilities.configured, DEFAULTS);
  t.strictSame(facts.networks[0], { name: 'bridge', networkId: '', ipv4: '', ipv6: '', mac: '' });
});

t.test('--cap-add SYS_ADMIN --cap-drop chown', async (t) => {
  const { capabilities } = factsOf('caps');
  t.strictSame(capabilities.added, ['CAP_SYS_ADMIN']);
  t.strictSame(capabilities.dropped, ['CAP_CHOWN']);
  const expected = sorted([...DOCKER_DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN'), 'CAP_SYS_ADMIN']);
  t.strictSame(capabilities.configured, expected);
  t.strictSame(capabilities.effective, expected, 'CapEff of the init process agrees');
});

t.test('--privileged: every capability, seccomp off, SELinux labels disabled', async (t) => {
  const facts = factsOf('privileged');
  t.equal(facts.privileged, true);
  t.strictSame(sorted(facts.capabilities.configured), sorted(CAPABILITIES));
  t.equal(facts.security.seccomp, 'unconfined');
  t.strictSame(facts.security.labelOptions, ['disable'], 'dockerd adds label=disable');
});

t.test('--pid/--ipc/--uts/--userns/--cgroupns host', async (t) => {
  t.strictSame(factsOf('host-namespaces').hostNamespaces, { pid: true, net: false, ipc: true, uts: true, userns: true, cgroup: true });
});

t.test('--network host', async (t) => {
  const facts = factsOf('host-network');
  t.equal(facts.hostNamespaces.net, true);
  t.strictSame(facts.networks.map((n) => n.name), ['host']);
  t.strictSame(facts.ports, []);
});

t.test('bind mounts, named volumes; sources resolved through realpath', async (t) => {
  const asked: string[] = [];
  const realpath = (path: string) => {
    asked.push(path);
    return path === '/var/run' ? '/run' : path;
  };
  const { mounts } = factsOf('mounts', realpath);
  const volumeSource = '/var/lib/dw-test/docker/volumes/dw-fixture-data/_data';
  t.strictSame(mounts, [
    { type: 'bind', source: '/etc', realSource: '/etc', destination: '/host-etc', rw: false, mode: 'ro', name: '', driver: '', ...requested('/etc') },
    { type: 'volume', source: volumeSource, realSource: volumeSource, destination: '/data', rw: true, mode: 'z', name: 'dw-fixture-data', driver: 'local', ...requested(volumeSource) },
    { type: 'bind', source: '/var/run', realSource: '/run', destination: '/host-run', rw: true, mode: '', name: '', driver: '', ...requested('/run') },
  ]);
  t.strictSame(asked, ['/etc', volumeSource, '/var/run']);
});

t.test('mounts without a host path are not resolved; unknown types are skipped', async (t) => {
  const asked: string[] = [];
  const mount = { Name: '', Driver: '', Mode: '', RW: true, Destination: '/x' };
  const facts = variant(
    { inspect: { Mounts: [{ ...mount, Type: 'tmpfs', Source: '' }, { ...mount, Type: 'image', Source: 'dw-test/busybox:1' }] } },
    { realpath: (p) => (asked.push(p), p) },
  );
  t.strictSame(facts.mounts.map((m) => [m.type, m.realSource]), [['tmpfs', '']]);
  t.strictSame(asked, []);
});

t.test('--security-opt seccomp=unconfined', async (t) => {
  t.equal(factsOf('seccomp-unconfined').security.seccomp, 'unconfined');
});

t.test('--security-opt with the deprecated colon syntax', async (t) => {
  t.strictSame(factsOf('security-opts').security, { seccomp: 'unconfined', apparmor: '', noNewPrivileges: true, labelOptions: ['disable'], seccompProfile: null });
});

t.test('security options, both syntaxes, last one wins', async (t) => {
  const cases: ReadonlyArray<readonly [string[], Partial<ReturnType<typeof variant>['security']>]> = [
    [['seccomp=unconfined'], { seccomp: 'unconfined' }],
    [['seccomp:unconfined'], { seccomp: 'unconfined' }],
    [['seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]}'], { seccomp: 'custom' }],
    [['seccomp=builtin'], { seccomp: 'default' }],
    [['seccomp=unconfined', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'], { seccomp: 'custom' }],
    [['no-new-privileges'], { noNewPrivileges: true }],
    [['no-new-privileges=true'], { noNewPrivileges: true }],
    [['no-new-privileges:true'], { noNewPrivileges: true }],
    [['no-new-privileges=1'], { noNewPrivileges: true }],
    [['no-new-privileges=false'], { noNewPrivileges: false }],
    [['no-new-privileges', 'no-new-privileges:false'], { noNewPrivileges: false }],
    [['label=type:svirt_apache_t', 'label:level:s0:c100,c200', 'disable'], { labelOptions: ['type:svirt_apache_t', 'level:s0:c100,c200', 'disable'] }],
    // AppArmor comes from AppArmorProfile, which dockerd fills from the option
    [['apparmor=unconfined'], { apparmor: '' }],
  ];
  for (const [options, expected] of cases) {
    const { security } = variant({ host: { SecurityOpt: options } });
    t.match(security, expected, options.join(' '));
  }
  t.equal(variant({ inspect: { AppArmorProfile: 'docker-default' } }).security.apparmor, 'docker-default');
  t.equal(variant({ host: { Privileged: true, SecurityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ERRNO"}'] } }).security.seccomp, 'unconfined', 'privileged ignores a profile');
});

t.test('the kernel has the last word on seccomp and no-new-privileges', async (t) => {
  const status = (seccomp: number, nnp: number) => fixture('default').procStatus!.replace(/^Seccomp:\s*\d/m, `Seccomp:\t${seccomp}`).replace(/^NoNewPrivs:\s*\d/m, `NoNewPrivs:\t${nnp}`);
  t.match(variant({}, { procStatus: status(0, 0) }).security, { seccomp: 'unconfined', noNewPrivileges: false }, 'no filter: unconfined');
  t.match(variant({}, { procStatus: status(2, 1) }).security, { seccomp: 'default', noNewPrivileges: true }, 'daemon-wide no-new-privileges');
});

t.test('--device', async (t) => {
  t.strictSame(factsOf('device').devices, [{ pathOnHost: '/dev/null', pathInContainer: '/dev/xnull', permissions: 'rwm' }]);
});

t.test('-p 8080:80 -p 127.0.0.1:5353:53/udp --expose 9000', async (t) => {
  t.strictSame(factsOf('ports').ports, [
    { proto: 'udp', hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53 },
    { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 },
    { proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
  ]);
});

t.test('ports: an empty host ip means every address; malformed entries are skipped', async (t) => {
  const Ports = {
    '80/tcp': [
      { HostIp: '', HostPort: '8080' },
      { HostIp: '0.0.0.0', HostPort: '8080' },
    ],
    '90/sctp': [{ HostIp: '::1', HostPort: '9090' }],
    '91/tcp': [{ HostIp: '0.0.0.0', HostPort: '' }],
    '92/tcp': [{ HostIp: '0.0.0.0', HostPort: '70000' }],
    '93/icmp': [{ HostIp: '0.0.0.0', HostPort: '9393' }],
    'x/tcp': [{ HostIp: '0.0.0.0', HostPort: '9494' }],
    '95/udp': null,
  };
  const base = fixture('default').inspect;
  const facts = variant({ inspect: { NetworkSettings: { ...base.NetworkSettings, Ports } } });
  t.strictSame(facts.ports, [
    { proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80 },
    { proto: 'tcp', hostIp: '::', hostPort: 8080, containerPort: 80 },
    { proto: 'sctp', hostIp: '::1', hostPort: 9090, containerPort: 90 },
  ]);
  t.strictSame(variant({ inspect: { NetworkSettings: { Ports: null, Networks: null } } }).ports, []);
});

t.test('--user --memory --pids-limit --cpus --restart --label', async (t) => {
  const facts = factsOf('resources');
  t.equal(facts.user, '1000:1000');
  t.strictSame(facts.resources, { memory: 64 * 1024 * 1024, pidsLimit: 100, cpus: 0.5, cpuShares: 0 });
  t.strictSame(facts.restartPolicy, { name: 'on-failure', maximumRetryCount: 3 });
  t.same(facts.labels, { app: 'web', team: 'a b' });
});

t.test('cpus from a CFS quota; an empty restart policy is `no`', async (t) => {
  t.equal(variant({ host: { NanoCpus: 0, CpuQuota: 50_000, CpuPeriod: 200_000 } }).resources.cpus, 0.25);
  t.equal(variant({ host: { NanoCpus: 0, CpuQuota: 150_000, CpuPeriod: 0 } }).resources.cpus, 1.5, 'default period 100 ms');
  t.equal(variant({ host: { RestartPolicy: { Name: '', MaximumRetryCount: 0 } } }).restartPolicy.name, 'no');
  t.equal(variant({ host: { RestartPolicy: null } }).restartPolicy.name, 'no');
});

t.test('capability names are normalised; unknown ones ignored', async (t) => {
  const { capabilities } = variant({ host: { CapAdd: ['sys_admin', 'CAP_NET_ADMIN', 'NOT_A_CAP', 'SYS_ADMIN'], CapDrop: ['all'] } });
  t.strictSame(capabilities.added, ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN']);
  t.strictSame(capabilities.dropped, ['ALL']);
  t.strictSame(capabilities.configured, ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN']);
});

t.test('an unreadable CapEff line gives no effective set', async (t) => {
  t.equal(variant({}, { procStatus: 'Name:\tsleep\nCapEff:\tnot-hex\n' }).capabilities.effective, null);
  t.equal(variant({}, { procStatus: 'Name:\tsleep\n' }).capabilities.effective, null);
  t.strictSame(variant({}, { procStatus: 'CapEff:\t0000000000200000\n' }).capabilities.effective, ['CAP_SYS_ADMIN']);
});

t.test('labels: null is empty, and keys never reach Object.prototype', async (t) => {
  t.same(variant({ config: { Labels: null } }).labels, {});
  const labels = variant({ config: { Labels: JSON.parse('{"__proto__":"x","a":"b"}') as Record<string, string> } }).labels;
  t.equal(labels['constructor'], undefined);
  t.equal(labels['__proto__'], 'x');
  t.strictSame(Object.keys(labels), ['__proto__', 'a']);
});

t.test('image refs: a removed image has none', async (t) => {
  t.strictSame(variant({}, { image: null }).image.repoTags, []);
  const digests = ['registry.example.com/app@sha256:' + 'b'.repeat(64)];
  t.strictSame(variant({}, { image: { RepoTags: null, RepoDigests: digests } }).image, {
    reference: 'dw-test/busybox:1',
    id: fixture('default').inspect.Image,
    repoTags: [],
    repoDigests: digests,
  });
});

t.test('execs: privilege, command and state from the exec inspect', async (t) => {
  const exec = (privileged: boolean, args: string[] | null) => ({
    ID: `e-${String(privileged)}`,
    ContainerID: fixture('default').inspect.Id,
    Running: privileged,
    ProcessConfig: { entrypoint: 'sh', arguments: args, privileged, user: privileged ? '' : 'nobody' },
  });
  t.strictSame(variant({}, { execs: [exec(true, ['-c', 'id']), exec(false, null)] }).execs, [
    { id: 'e-true', privileged: true, command: ['sh', '-c', 'id'], user: '', running: true, uids: null },
    { id: 'e-false', privileged: false, command: ['sh'], user: 'nobody', running: false, uids: null },
  ]);
});

t.test('processes: name (spaces kept), CapEff and CapBnd from each status; a status without them is left out', async (t) => {
  const status = (name: string, eff: string, bnd: string) => `Name:\t${name}\nUmask:\t0022\nCapEff:\t${eff}\nCapBnd:\t${bnd}\n`;
  const facts = variant({}, {
    processes: [
      { pid: 7, status: status('sleep', '0000000000000000', '00000000a80425fb') },
      { pid: 8, status: status('my worker', '0000000000200000', '0000000000200000') },
      { pid: 9, status: 'Name:\tgone\n' },
    ],
    processesUnread: 3,
  });
  t.same(facts.processes, [
    { pid: 7, comm: 'sleep', effective: [], bounding: DEFAULTS },
    { pid: 8, comm: 'my worker', effective: ['CAP_SYS_ADMIN'], bounding: ['CAP_SYS_ADMIN'] },
  ]);
  t.equal(facts.processesUnread, 3);
});
