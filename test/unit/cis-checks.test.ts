import t from 'tap';
import { imageViolations } from '../../src/domain/checks/image.js';
import { runtimeViolations } from '../../src/domain/checks/runtime.js';
import type { ExecFacts, PublishedPort } from '../../src/domain/facts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { toContainerFacts, type ContainerInspect, type FactsInput } from '../../src/adapters/docker/facts.js';
import { parseMountInfo } from '../../src/domain/mount-map.js';
import { makeFacts, NO_PROCESSES } from '../helpers/facts.js';

/** The CIS §5 checks of checks/cis-runtime.ts and the §4 image hygiene checks, one by one. */

function policy(text: string): Policy {
  const result = parsePolicy(`version: 1\n${text}`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

const INPUT: FactsInput = { image: null, procStatus: null, realpath: (p: string) => p, execs: [], ...NO_PROCESSES };

const check = (id: string, options = '') => policy(`containers:\n  ${id}: { action: alert${options} }\n`);
/** The violations of a policy with only `id` on, for facts changed by `overrides`. */
const found = (p: Policy, ...args: Parameters<typeof makeFacts>) => [...runtimeViolations(p.containers, makeFacts(...args)), ...imageViolations(p.images, makeFacts(...args))];
const raised = (p: Policy, ...args: Parameters<typeof makeFacts>) => found(p, ...args).map((v) => v.check);

t.test('read-only-root: judged on the mount table when read, else on ReadonlyRootfs', async (t) => {
  const p = check('read-only-root');
  t.same(raised(p), ['read-only-root'], 'a default container writes to /');
  t.same(raised(p, { rootFilesystem: { readOnly: true, judgedOn: 'mount table' } }), []);
  const [v] = found(p);
  t.equal(v!.severity, 'low');
  t.equal(v!.message, 'has a writable root filesystem (no --read-only)');

  const inspect = inspectOf({ HostConfig: { ReadonlyRootfs: true } });
  const rw = toContainerFacts(inspect, { ...INPUT, mountTable: parseMountInfo('1 0 0:50 / / rw,relatime - overlay overlay rw\n') });
  t.same(rw.rootFilesystem, { readOnly: false, judgedOn: 'mount table' }, 'remounted read-write: the kernel says so, not the configuration');
  const ro = toContainerFacts(inspectOf({}), { ...INPUT, mountTable: parseMountInfo('1 0 0:50 / / ro,relatime - overlay overlay rw\n') });
  t.same(ro.rootFilesystem, { readOnly: true, judgedOn: 'mount table' });
  t.same(toContainerFacts(inspect, INPUT).rootFilesystem, { readOnly: true, judgedOn: 'configuration' }, 'no table (stopped): the configuration');
});

t.test('restart-policy: no and on-failure up to max-retries pass; on-failure:0 (forever), always, unless-stopped fail', async (t) => {
  const p = check('restart-policy');
  const with_ = (name: string, maximumRetryCount = 0) => raised(p, { restartPolicy: { name, maximumRetryCount } });
  t.same(with_('no'), []);
  t.same(with_('on-failure', 5), [], 'the default max-retries is 5');
  t.same(with_('on-failure', 1), []);
  t.same(with_('on-failure', 6), ['restart-policy']);
  t.same(with_('on-failure', 0), ['restart-policy'], 'no count: dockerd retries forever');
  t.same(with_('always'), ['restart-policy']);
  t.same(with_('unless-stopped'), ['restart-policy']);
  t.same(with_('anything-else'), ['restart-policy'], 'an unknown name fails safe');
  t.same(raised(check('restart-policy', ', max-retries: 10'), { restartPolicy: { name: 'on-failure', maximumRetryCount: 10 } }), []);
  const [v] = found(p, { restartPolicy: { name: 'on-failure', maximumRetryCount: 9 } });
  t.same(v!.details, { restartPolicy: 'on-failure', maximumRetryCount: 9, maxRetries: 5 });
  t.equal(v!.message, 'is restarted on failure more than 5 times');
});

const port = (hostIp: string, hostPort: number, proto: PublishedPort['proto'] = 'tcp'): PublishedPort => ({ proto, hostIp, hostPort, containerPort: 80 });

t.test('wildcard-bind: a port dockerd bound on every address, IPv4 or IPv6', async (t) => {
  const p = check('wildcard-bind');
  t.same(raised(p, { ports: [port('127.0.0.1', 8080), port('198.51.100.7', 8081), port('::1', 8082)] }), [], 'one address each');
  const [v] = found(p, { ports: [port('0.0.0.0', 8080), port('::', 8080), port('127.0.0.1', 9000)] });
  t.equal(v!.message, 'publishes 1 port on every host address rather than one', 'one host port, bound on both families');
  t.same(v!.details.ports, [port('0.0.0.0', 8080), port('::', 8080)]);
  t.same(raised(p, { ports: [port('::', 53, 'udp')] }), ['wildcard-bind']);
  const facts = toContainerFacts(inspectOf({ NetworkSettings: { Ports: { '80/tcp': [{ HostIp: '', HostPort: '8080' }] } } }), INPUT);
  t.same(raised(p, facts), ['wildcard-bind'], "an older engine's empty HostIp is every address");
});

t.test('privileged-ports: a host port below 1024, whatever the port inside', async (t) => {
  const p = check('privileged-ports');
  t.same(raised(p, { ports: [port('127.0.0.1', 1024), port('0.0.0.0', 8443)] }), []);
  const [v] = found(p, { ports: [port('127.0.0.1', 80), port('127.0.0.1', 443), port('127.0.0.1', 2000)] });
  t.equal(v!.message, 'publishes 2 ports below 1024 on the host');
  t.same(v!.details.ports, [port('127.0.0.1', 80), port('127.0.0.1', 443)]);
});

t.test('mount-propagation: the kernel view (shared:N) while it can be read, else the configured shared/rshared', async (t) => {
  const p = check('mount-propagation');
  t.same(raised(p, { mountPropagation: [{ destination: '/data', configured: 'rprivate', shared: false }] }), []);
  t.same(raised(p, { mountPropagation: [{ destination: '/data', configured: 'rslave', shared: null }] }), []);
  const kernel = found(p, { mountPropagation: [{ destination: '/data', configured: 'rprivate', shared: true }] });
  t.same(kernel[0]!.details.mounts, [{ destination: '/data', propagation: 'rprivate', judgedOn: 'mount table' }], 'the kernel says shared');
  t.same(raised(p, { mountPropagation: [{ destination: '/data', configured: 'rshared', shared: false }] }), [], 'the kernel says not shared');
  t.same(raised(p, { mountPropagation: [{ destination: '/data', configured: 'shared', shared: null }] }), ['mount-propagation'], 'stopped: configuration');

  const mounts = [
    { Type: 'bind', Source: '/srv/a', Destination: '/a', Mode: 'rshared', RW: true, Propagation: 'rshared' },
    { Type: 'bind', Source: '/srv/b', Destination: '/b', Mode: '', RW: true, Propagation: 'rprivate' },
    { Type: 'tmpfs', Source: '', Destination: '/t', Mode: '', RW: true },
  ];
  const table = parseMountInfo('1 0 0:50 / / rw - overlay overlay rw\n2 1 254:0 /srv/a /a rw shared:7 - ext4 /dev/vda1 rw\n3 1 254:0 /srv/b /b rw master:1 - ext4 /dev/vda1 rw\n');
  t.same(toContainerFacts(inspectOf({ Mounts: mounts }), { ...INPUT, mountTable: table }).mountPropagation, [
    { destination: '/a', configured: 'rshared', shared: true },
    { destination: '/b', configured: 'rprivate', shared: false },
  ]);
  const gate = [{ Type: 'bind', Source: '/srv/a', Destination: '/a', Mode: 'ro,rshared', RW: false }];
  t.same(toContainerFacts(inspectOf({ Mounts: gate }), INPUT).mountPropagation, [{ destination: '/a', configured: 'rshared', shared: null }], "a create request: the -v mode's");
});

t.test('cgroup-parent: any parent but the allowed ones', async (t) => {
  t.same(raised(check('cgroup-parent')), [], "the engine's default");
  const [v] = found(check('cgroup-parent'), { cgroupParent: '/elsewhere' });
  t.same([v!.check, v!.severity, v!.details], ['cgroup-parent', 'medium', { cgroupParent: '/elsewhere' }]);
  t.same(raised(check('cgroup-parent', ', allowed: [limited.slice]'), { cgroupParent: 'limited.slice' }), []);
  t.same(toContainerFacts(inspectOf({ HostConfig: { CgroupParent: 'x.slice' } }), INPUT).cgroupParent, 'x.slice');
});

t.test('healthcheck: the container\'s own or its image\'s; NONE turns it off', async (t) => {
  const p = check('healthcheck');
  t.same(raised(p, { healthcheck: { command: ['/bin/sh', '-c', 'true'], disabled: false, image: false } }), []);
  t.same(found(p)[0]!.message, "has no healthcheck, neither its own nor its image's");
  t.same(found(p, { healthcheck: { command: null, disabled: true, image: true } })[0]!.message, "has the image's healthcheck turned off (--no-healthcheck)");

  const image = (test: string[] | null) => ({ ...INPUT, image: { RepoTags: [], RepoDigests: [], Config: { Healthcheck: test && { Test: test } } } });
  const of = (config: ContainerInspect['Config'], input: FactsInput = INPUT) => toContainerFacts(inspectOf({ Config: config }), input).healthcheck;
  t.same(of({ Image: 'x', Healthcheck: { Test: ['CMD-SHELL', 'curl -f localhost'] } }), { command: ['/bin/sh', '-c', 'curl -f localhost'], disabled: false, image: null });
  t.same(of({ Image: 'x', Healthcheck: { Test: ['CMD-SHELL', 'x'] }, Shell: ['/bin/bash', '-ec'] }).command, ['/bin/bash', '-ec', 'x'], 'through SHELL');
  t.same(of({ Image: 'x', Healthcheck: { Test: ['CMD', 'probe', '--quick'] } }, image(null)), { command: ['probe', '--quick'], disabled: false, image: false });
  t.same(of({ Image: 'x' }, image(['CMD', 'probe'])), { command: ['probe'], disabled: false, image: true }, "none given (a create request): the image's");
  t.same(of({ Image: 'x', Healthcheck: { Test: ['NONE'] } }, image(['CMD', 'probe'])), { command: null, disabled: true, image: true });
  t.same(of({ Image: 'x', Healthcheck: { Test: [] } }, image(['NONE'])), { command: null, disabled: true, image: false }, 'an image with NONE has none');
});

t.test('ulimits: any override but the allowed names', async (t) => {
  t.same(raised(check('ulimits')), []);
  const nofile = { name: 'nofile', soft: 1024, hard: 2048 };
  const nproc = { name: 'nproc', soft: 10, hard: 10 };
  const [v] = found(check('ulimits'), { ulimits: [nofile, nproc] });
  t.same([v!.message, v!.details.ulimits], ["overrides 2 ulimits of the engine's defaults not on the allowed list", [nofile, nproc]]);
  t.same(found(check('ulimits', ', allowed: [nofile]'), { ulimits: [nofile, nproc] })[0]!.details.ulimits, [nproc]);
  t.same(raised(check('ulimits', ', allowed: [nofile]'), { ulimits: [nofile] }), []);
  t.same(toContainerFacts(inspectOf({ HostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }] } }), INPUT).ulimits, [nofile]);
  t.notOk(parsePolicy('version: 1\ncontainers:\n  ulimits: { action: alert, allowed: [files] }\n', 'p.yaml').ok, 'a name dockerd does not know is an error');
});

t.test('label-disabled: every spelling dockerd takes (moby parseSecurityOpt), and none it would not', async (t) => {
  const p = check('label-disabled');
  const labels = (...options: string[]) => raised(p, toContainerFacts(inspectOf({ HostConfig: { SecurityOpt: options } }), INPUT));
  t.same(labels('label=disable'), ['label-disabled']);
  t.same(labels('label:disable'), ['label-disabled'], 'the deprecated ":" separator');
  t.same(labels('disable'), ['label-disabled'], 'a bare "disable" is a label option too');
  t.same(labels('label=type:spc_t', 'label=disable'), ['label-disabled'], 'any one disables');
  // dockerd compares exactly: SELinux refuses these at create (or ignores them without SELinux), none disables labelling
  t.same(labels('label=Disable'), []);
  t.same(labels('label= disable'), []);
  t.same(labels(' label=disable'), []);
  t.same(labels('label=disable:x'), []);
  t.same(labels('label:level:s0'), [], '":" splits once: label, level:s0');
  t.same(labels('no-new-privileges', 'seccomp=unconfined'), []);
});

const exec = (user: string, command = ['sh'], privileged = false): ExecFacts => ({ id: `e-${user}`, privileged, command, user, running: false, uids: null });
const uids = (uid: number) => ({ real: uid, effective: uid, saved: uid, filesystem: uid });

t.test('root-exec: uid 0 by --user, or no --user in a container that runs as root', async (t) => {
  const p = check('root-exec');
  for (const user of ['root', '0', '0:0', 'root:1000', '+0', '00']) t.same(raised(p, { user: '1000', execs: [exec(user)] }), ['root-exec'], user);
  for (const user of ['1000', 'nobody', '1000:0', 'rooty']) t.same(raised(p, { user: '', execs: [exec(user)] }), [], user);
  t.same(raised(p, { user: '', execs: [exec('')] }), ['root-exec'], 'no --user, no USER: root');
  t.same(raised(p, { user: '0:0', execs: [exec('')] }), ['root-exec'], "the container's user is root");
  t.same(raised(p, { user: '1000', execs: [exec('')] }), [], "the container's user is not");
  t.same(
    raised(p, { user: '', processUids: { real: 999, effective: 999, saved: 999, filesystem: 999 }, execs: [exec('')] }),
    ['root-exec'],
    'init dropped to 999 (gosu): an exec still starts as the configured root',
  );
  const [v] = found(p, { user: '', execs: [exec('', ['sh', '-c', 'id'])] });
  t.equal(v!.message, 'ran 1 exec as root');
  t.same(v!.details.execs, [{ id: 'e-', command: ['sh', '-c', 'id'], user: '', containerUser: '', running: false, uid: null, judgedOn: 'configuration' }]);
  t.same(raised(p, { execHiddenByLabel: true }), ['root-exec'], 'an exec hidden by an execID label: fail-safe');
});

t.test("root-exec: a running exec is judged on its process's uids, not its --user", async (t) => {
  const p = check('root-exec');
  const running = (user: string, uid: number): ExecFacts => ({ ...exec(user), running: true, uids: uids(uid) });
  const [v] = found(p, { user: '1000', execs: [running('toor', 0)] });
  t.match(v!.details.execs, [{ user: 'toor', uid: uids(0), judgedOn: 'process' }], 'a name the image maps to uid 0');
  t.same(raised(p, { user: '', execs: [running('', 1000)] }), [], 'an exec that is not root, whatever the configuration says');
  t.same(raised(p, { user: '1000', execs: [{ ...running('1000', 1000), uids: { real: 1000, effective: 1000, saved: 0, filesystem: 1000 } }] }), ['root-exec'], 'a saved uid 0 can become root again');
  const facts = toContainerFacts(inspectOf({}), {
    ...INPUT,
    execs: [{ ID: 'x1', ContainerID: 'c0ffee', Running: true, Pid: 99, ProcessConfig: { entrypoint: 'sh', privileged: false, user: 'toor' } }],
    execStatus: new Map([['x1', 'Name:\tsh\nUid:\t0\t0\t0\t0\n']]),
  });
  t.same(facts.execs[0]!.uids, uids(0), "the exec's status is read into its facts");
});

t.test("root-exec: the container's own healthcheck execs are not counted, a look-alike with another user is", async (t) => {
  const p = check('root-exec');
  const healthcheck = { command: ['/bin/sh', '-c', 'wget -q localhost'], disabled: false, image: true };
  t.same(raised(p, { user: '', healthcheck, execs: [exec('', healthcheck.command)] }), []);
  t.same(raised(p, { user: '1000', healthcheck, execs: [exec('root', healthcheck.command)] }), ['root-exec'], 'same command, as root');
  t.same(raised(p, { user: '', healthcheck, execs: [exec('', [...healthcheck.command, 'x'])] }), ['root-exec'], 'another command');
  t.same(raised(p, { user: '', healthcheck: { ...healthcheck, command: null }, execs: [exec('', healthcheck.command)] }), ['root-exec'], 'no healthcheck');
});

t.test('default-bridge: the network the engine names bridge, not one a name resembles', async (t) => {
  const p = check('default-bridge');
  const [v] = found(p);
  t.same([v!.message, v!.details], ["is attached to Docker's default bridge network", { network: 'bridge', networkId: 'n1' }]);
  const own = { name: 'app_bridge', networkId: 'n2', ipv4: '172.18.0.2', ipv6: '', mac: '02:42:ac:12:00:02' };
  t.same(raised(p, { networks: [own] }), []);
  t.same(raised(p, { networks: [{ ...own, name: 'Bridge' }] }), []);
  t.same(raised(p, { networks: [] }), [], '--network host / none / container:');
});

t.test('exceptions excuse the CIS checks like every runtime check', async (t) => {
  const p = policy(`containers:\n  default-bridge: { action: alert }\n  read-only-root: { action: stop }\n  exceptions:\n    - match: { container: web }\n      allow: [default-bridge]\n`);
  t.same(raised(p), ['read-only-root']);
});

t.test('images.latest-tag: judged on Config.Image; a digest or an image id pins', async (t) => {
  const p = policy('images:\n  latest-tag: { action: alert }\n');
  const image = (reference: string) => ({ image: { reference, id: `sha256:${'a'.repeat(64)}`, repoTags: ['busybox:latest'], repoDigests: [] } });
  t.same(found(p, image('busybox'))[0]!.message, 'was created from an untagged image reference (:latest)');
  t.same(found(p, image('docker.io/library/busybox:latest'))[0]!.details, { reference: 'docker.io/library/busybox:latest', tag: 'latest' });
  t.same(raised(p, image('127.0.0.1:5000/app')), ['images.latest-tag'], 'a registry port is not a tag');
  t.same(raised(p, image('busybox:1.36')), [], 'tagged: RepoTags naming it latest too make no difference');
  t.same(raised(p, image(`busybox:latest@sha256:${'7'.repeat(64)}`)), [], 'digest-pinned');
  t.same(raised(p, image(`sha256:${'a'.repeat(64)}`)), [], 'by image id');
  t.same(raised(p, image('NOT a reference')), ['image'], "an unparsable reference is the provenance check's");
  t.same(found(p, image('busybox'))[0]!.severity, 'low');
  const excused = policy('images:\n  latest-tag: { action: alert }\n  exceptions: [{ container: web }]\n');
  t.same(raised(excused, image('busybox')), [], 'images.exceptions excuse it');
});

t.test("images.healthcheck: the image's own healthcheck", async (t) => {
  const p = policy('images:\n  healthcheck: { action: alert, severity: medium }\n');
  const [v] = found(p);
  t.same([v!.check, v!.severity, v!.message], ['images.healthcheck', 'medium', 'image has no healthcheck (HEALTHCHECK)']);
  t.same(raised(p, { healthcheck: { command: ['probe'], disabled: false, image: true } }), []);
  t.same(raised(p, { healthcheck: { command: ['probe'], disabled: false, image: false } }), ['images.healthcheck'], 'the container adding one does not make the image have one');
  t.same(raised(p, { healthcheck: { command: null, disabled: false, image: null } }), [], 'the image could not be inspected: not judged');
});

t.test('every new check is off unless the policy names it', async (t) => {
  const facts = { ports: [port('0.0.0.0', 80)], cgroupParent: '/x', ulimits: [{ name: 'nofile', soft: 1, hard: 1 }], execs: [exec('root')], restartPolicy: { name: 'always', maximumRetryCount: 0 } };
  t.same(raised(policy('containers: {}\n'), facts), []);
});


function inspectOf(over: { HostConfig?: ContainerInspect['HostConfig']; Config?: ContainerInspect['Config']; Mounts?: ContainerInspect['Mounts']; NetworkSettings?: ContainerInspect['NetworkSettings'] }): ContainerInspect {
  return {
    Id: 'c0ffee',
    Name: '/web',
    Image: 'sha256:1',
    State: { Status: 'running', Running: true, Pid: 4242, StartedAt: '' },
    Config: over.Config ?? { Image: 'busybox:1' },
    HostConfig: over.HostConfig ?? {},
    NetworkSettings: over.NetworkSettings ?? {},
    Mounts: over.Mounts ?? [],
  };
}
