import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { toContainerFacts, type ContainerInspect } from '../../src/adapters/docker/facts.js';
import { configuredCapabilities } from '../../src/domain/capabilities.js';
import { runtimeViolations } from '../../src/domain/checks/runtime.js';
import { DOCKER_DEFAULT_DEVICE_RULES, grantedBy, parseDeviceCgroupRule } from '../../src/domain/device-rules.js';
import type { ContainerFacts } from '../../src/domain/facts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { MAX_PROFILE_BYTES, readSeccompProfile } from '../../src/domain/seccomp-profile.js';
import { makeFacts, NO_PROCESSES } from '../helpers/facts.js';

/** Issue 13's pure parts: device cgroup rules, seccomp profiles, masked paths, uids, joined namespaces. */

const DEFAULT_CAPS = configuredCapabilities([], [], false);

function policyOf(containers: string) {
  const result = parsePolicy(`version: 1\ncontainers:\n${containers}`, 'policy.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.policy;
}

const findings = (containers: string, facts: Partial<ContainerFacts>) => runtimeViolations(policyOf(containers).containers, makeFacts(facts));

t.test('device cgroup rules: parsed as dockerd takes them', async (t) => {
  t.same(parseDeviceCgroupRule('b 8:* rwm'), { type: 'b', major: 8, minor: '*', access: 'rwm', text: 'b 8:* rwm' });
  t.same(parseDeviceCgroupRule('a 1:3 r'), { type: 'a', major: '*', minor: '*', access: 'rwm', text: 'a 1:3 r' }, 'the kernel reads any `a` rule as everything');
  for (const bad of ['b 8:*', 'x 1:1 r', 'c 1:1 rx', 'c -1:1 r', ' c 1:1 r', 'c 1:1  r', 'c 12345678901:1 r']) t.equal(parseDeviceCgroupRule(bad), undefined, JSON.stringify(bad));
});

t.test("device cgroup rules: granted when Docker's defaults (and the allowed ones) already give every access", async (t) => {
  const granted = (text: string, extra: string[] = []) => grantedBy(parseDeviceCgroupRule(text)!, [...DOCKER_DEFAULT_DEVICE_RULES, ...extra.map((e) => parseDeviceCgroupRule(e)!)]);
  for (const rule of ['c 1:3 rwm', 'b *:* m', 'c 8:1 m', 'c 136:4 rw', 'c 10:200 r']) t.ok(granted(rule), rule);
  for (const rule of ['b 8:* rwm', 'b 8:0 r', 'c 1:1 r', 'c 136:* rwm'.replace('136', '4'), 'a *:* m', 'c *:* r', 'b *:* rm']) t.notOk(granted(rule), rule);
  t.ok(granted('b 8:0 rwm', ['b 8:* rw']), 'r and w allowed, m by default');
  t.notOk(granted('b 8:* rw', ['b 8:0 rw']), 'an allowed minor does not cover all minors');
  t.ok(granted('a *:* rwm', ['b *:* rw', 'c *:* rw']), 'both types covered');
});

t.test('devices check: rules beyond the defaults and the allowed ones; unreadable rules count', async (t) => {
  const check = '  devices: { action: alert, allowed-cgroup-rules: ["c 10:229 rw"] }\n';
  t.same(findings(check, { deviceCgroupRules: ['c 1:3 rwm', 'c 10:229 rwm'] }), []);
  const [v] = findings(check, { deviceCgroupRules: ['b 8:* rwm', 'c 10:229 rwm', 'garbage'] });
  t.equal(v?.message, 'is given 2 device cgroup rules not on the allowed list');
  t.same(v?.details, { devices: [], cgroupRules: ['b 8:* rwm', 'garbage'] });
  const both = findings(check, { devices: [{ pathOnHost: '/dev/sda', pathInContainer: '/dev/sda', permissions: 'rwm' }], deviceCgroupRules: ['c 1:1 r'] });
  t.equal(both[0]?.message, 'is given 1 host device and 1 device cgroup rule not on the allowed list');
  t.throws(() => policyOf('  devices: { action: alert, allowed-cgroup-rules: ["b 8"] }\n'), /"b 8" is not a device cgroup rule/);
});

t.test('seccomp profiles: what gets through, over-estimated', async (t) => {
  const read = (profile: unknown, caps = DEFAULT_CAPS) => readSeccompProfile(JSON.stringify(profile), caps);
  const all = read({ defaultAction: 'SCMP_ACT_ALLOW' });
  t.ok(all.readable && all.allows.includes('keyctl') && all.allows.includes('mount'));
  const denyAll = read({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['keyctl', 'mount'], action: 'SCMP_ACT_ERRNO' }, { name: 'unshare', action: 'SCMP_ACT_KILL' }] });
  t.ok(denyAll.readable && !denyAll.allows.includes('keyctl') && !denyAll.allows.includes('mount') && !denyAll.allows.includes('unshare'));
  t.ok(denyAll.readable && denyAll.allows.includes('setns'), 'what it does not name gets through');
  const conditional = read({ defaultAction: 'SCMP_ACT_LOG', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }] });
  t.ok(conditional.readable && conditional.allows.includes('mount'), 'a refusal with conditions may not hold');
  const allowList = read({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'mount'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 0, op: 'SCMP_CMP_NE' }] }] });
  t.same(allowList.readable && allowList.allows, ['mount'], 'an allowance counts whatever its conditions');
  const capped = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } }] };
  t.same(read(capped), { readable: true, defaultAction: 'SCMP_ACT_ERRNO', allows: [] }, "like Docker's own: only with CAP_SYS_ADMIN");
  t.same(read(capped, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN']), { readable: true, defaultAction: 'SCMP_ACT_ERRNO', allows: ['mount'] });
  t.same(readSeccompProfile('{', DEFAULT_CAPS), { readable: false, reason: 'not JSON' });
  t.same(read({ syscalls: [] }), { readable: false, reason: 'no defaultAction' });
  t.same(read({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [42] }), { readable: false, reason: 'a syscall rule dockerd would not take' });
  const huge = JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', comment: 'x'.repeat(MAX_PROFILE_BYTES) });
  t.same(readSeccompProfile(huge, DEFAULT_CAPS), { readable: false, reason: `larger than ${MAX_PROFILE_BYTES} bytes` }, 'size-bounded before parsing');
});

t.test('seccomp-unconfined: a custom profile letting through what the default refuses', async (t) => {
  const check = '  seccomp-unconfined: { action: alert }\n';
  const custom = (profile: unknown, caps = DEFAULT_CAPS) =>
    findings(check, {
      capabilities: { added: [], dropped: [], configured: caps, effective: caps },
      security: { seccomp: 'custom', apparmor: '', noNewPrivileges: false, labelOptions: [], seccompProfile: readSeccompProfile(JSON.stringify(profile), caps) },
    });
  const [v] = custom({ defaultAction: 'SCMP_ACT_ALLOW' });
  t.match(v?.message, /^runs with a seccomp profile that allows what Docker's default profile refuses: keyctl, add_key/);
  t.match(v?.details, { seccomp: 'custom', defaultAction: 'SCMP_ACT_ALLOW' });
  const mountOnly = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ALLOW' }] };
  t.same(custom(mountOnly)[0]?.details.allows, ['mount']);
  t.same(custom(mountOnly, [...DEFAULT_CAPS, 'CAP_SYS_ADMIN']), [], 'the default profile gives mount to SYS_ADMIN holders too (the capabilities check judges that)');
  const unreadable = findings(check, { security: { seccomp: 'custom', apparmor: '', noNewPrivileges: false, labelOptions: [], seccompProfile: { readable: false, reason: 'not JSON' } } });
  t.equal(unreadable[0]?.message, 'runs with a seccomp profile dockwarden cannot read: judged unconfined');
});

t.test('unmasked-paths', async (t) => {
  const check = '  unmasked-paths: { action: alert }\n';
  t.same(findings(check, {}), [], "Docker's defaults");
  const [v] = findings(check, { systemPaths: { masked: [], readOnly: [] } });
  t.equal(v?.message, 'exposes 15 /proc and /sys paths Docker masks or makes read-only');
  t.equal(v?.severity, 'high');
  const masked = makeFacts().systemPaths.masked;
  const [kcore] = findings(check, { systemPaths: { masked: [...masked.filter((p) => p !== '/proc/kcore'), '/proc/sys'], readOnly: [] } });
  t.same(kcore?.details, { masked: ['/proc/kcore'], readOnly: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sysrq-trigger'] }, 'masked is stronger than read-only');
});

t.test('root-user: the process uids first, the --user string only without a process', async (t) => {
  const check = '  root-user: { action: alert }\n';
  const uids = (real: number, effective: number, saved: number, filesystem: number) => ({ real, effective, saved, filesystem });
  const [v] = findings(check, { user: 'toor', processUids: uids(0, 0, 0, 0) });
  t.same(v?.details, { user: 'toor', uid: uids(0, 0, 0, 0), judgedOn: 'process' });
  t.equal(v?.message, 'runs as root (uid 0)', 'the name is not in the sentence');
  t.same(findings(check, { user: '', processUids: uids(1000, 1000, 1000, 1000) }), [], 'the image runs as 1000');
  t.equal(findings(check, { user: '1000', processUids: uids(1000, 1000, 0, 1000) }).length, 1, 'a saved uid 0 can come back');
  for (const user of ['', '+0', '-0', '00', 'root:1000']) {
    const [stopped] = findings(check, { user, processUids: null });
    t.match(stopped?.details, { user, uid: null, judgedOn: /^configuration/ }, JSON.stringify(user));
  }
  t.same(findings(check, { user: 'toor', processUids: null }), [], 'a name is only seen in the process');
});

t.test('host-namespaces: joined containers, and unresolved chains count', async (t) => {
  const check = '  host-namespaces: { namespaces: [pid, net], action: alert }\n';
  const base = fixtureInspect();
  const facts = (joinedNamespaces: ContainerFacts['joinedNamespaces'], host: Partial<ContainerInspect['HostConfig']> = {}) =>
    toContainerFacts({ ...base, HostConfig: { ...base.HostConfig, ...host } }, { image: null, procStatus: null, realpath: (p) => p, execs: [], joinedNamespaces, ...NO_PROCESSES });
  const join = (namespace: 'pid' | 'net' | 'ipc', host: boolean | null) => ({ namespace, through: ['a'], host, judgedBy: host === null ? ('none' as const) : ('inspect' as const) });
  t.match(facts([join('pid', true), join('net', false)]).hostNamespaces, { pid: true, net: false, ipc: false });
  t.same(facts([join('ipc', null)]).hostNamespaces.ipc, true, 'fail-safe');
  const [v] = runtimeViolations(policyOf(check).containers, facts([join('pid', true), join('net', false)]));
  t.same(v?.details, { namespaces: ['pid'], joined: [join('pid', true)] });
});

t.test('facts: uids, masked paths, cgroup rules from inspect and /proc', async (t) => {
  const base = fixtureInspect();
  const status = 'Name:\tsh\nUid:\t0\t1000\t0\t1000\nGid:\t0\t0\t0\t0\nSeccomp:\t2\n';
  const of = (host: Partial<ContainerInspect['HostConfig']>, procStatus: string | null = status) =>
    toContainerFacts({ ...base, HostConfig: { ...base.HostConfig, ...host } }, { image: null, procStatus, realpath: (p) => p, execs: [], ...NO_PROCESSES });
  t.same(of({}).processUids, { real: 0, effective: 1000, saved: 0, filesystem: 1000 });
  t.equal(of({}, 'Uid:\t0\t0\n').processUids, null, 'a malformed line is no uid');
  t.same(of({ MaskedPaths: [], ReadonlyPaths: [] }).systemPaths, { masked: [], readOnly: [] });
  t.same(of({ MaskedPaths: null, ReadonlyPaths: null }).systemPaths, makeFacts().systemPaths, "null: Docker's defaults");
  t.same(of({ Privileged: true }).systemPaths, { masked: [], readOnly: [] }, 'privileged: nothing masked');
  t.same(of({ DeviceCgroupRules: ['b 8:* rwm'] }).deviceCgroupRules, ['b 8:* rwm']);
  const profile = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' });
  t.match(of({ SecurityOpt: [`seccomp=${profile}`] }).security, { seccomp: 'custom', seccompProfile: { readable: true, defaultAction: 'SCMP_ACT_ALLOW' } });
  t.equal(of({ SecurityOpt: ['seccomp=unconfined'] }).security.seccompProfile, null);
});

function fixtureInspect(): ContainerInspect {
  const file = resolve(import.meta.dirname, '../fixtures/container-facts/default.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { inspect: ContainerInspect }).inspect;
}
