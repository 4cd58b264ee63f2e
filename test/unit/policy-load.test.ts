import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import t from 'tap';
import { DOCKER_DEFAULT_CAPABILITIES } from '../../src/domain/capabilities.js';
import { loadPolicyFile, parsePolicy } from '../../src/domain/policy/load.js';
import { formatPolicyError } from '../../src/domain/policy/result.js';
import type { Policy } from '../../src/domain/policy/model.js';

const CONFIG = resolve(import.meta.dirname, '../../config');

function valid(text: string): Policy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) throw new Error(result.errors.map(formatPolicyError).join('\n'));
  return result.policy;
}

/** The formatted errors, as `dockwarden policy validate` prints them. */
function errors(text: string): string[] {
  const result = parsePolicy(text, 'policy.yaml');
  return result.ok ? [] : result.errors.map(formatPolicyError);
}

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

t.test('a policy of only `version: 1` gets the safe defaults', async (t) => {
  const text = 'version: 1\n';
  const policy = valid(text);
  t.same(
    { ...policy, sources: [...policy.sources] },
    {
      version: 1,
      mode: 'enforce',
      sources: [],
      ports: { default: 'deny', rules: [], labels: 'narrow' },
      containers: { exceptions: [], stopGraceSeconds: 10 },
      images: { rules: [], default: 'allow', local: 'allow', registryAuth: null, insecureRegistries: [], action: 'alert', severity: 'medium', exceptions: [] },
      volumes: { create: [], selinux: { relabel: 'off', roots: [] } },
      network: { antiSpoofing: true, exceptions: [] },
      hash: createHash('sha256').update(text).digest('hex'),
      file: 'policy.yaml',
    },
  );
  t.strictSame(Object.keys(policy.containers), ['exceptions', 'stopGraceSeconds'], 'no check is on');
});

t.test('ports: sources resolved, globs compiled, ports parsed, camelCase', async (t) => {
  const policy = valid(
    yaml(
      'version: 1',
      'mode: audit',
      'sources:',
      '  office: [198.51.100.77/26, "2001:DB8:1::/48"]',
      'ports:',
      '  default: allow',
      '  labels: ignore',
      '  rules:',
      '    - name: grafana',
      '      match: { container: "grafana*", port: 3000-3001/tcp, container-port: 3000/tcp, label: { tier: "front*", com.example.team: ops } }',
      '      allow: [office, 198.51.100.7, any]',
      '    - name: all',
      '      match: {}',
      '      allow: []',
    ),
  );
  const office = [
    { family: 4, address: '198.51.100.64', prefix: 26, text: '198.51.100.64/26' },
    { family: 6, address: '2001:db8:1::', prefix: 48, text: '2001:db8:1::/48' },
  ];
  t.equal(policy.mode, 'audit');
  t.same([...policy.sources], [['office', office]]);
  t.equal(policy.ports.default, 'allow');
  t.equal(policy.ports.labels, 'ignore');

  const [grafana, all] = policy.ports.rules;
  t.equal(grafana?.name, 'grafana');
  t.equal(grafana?.index, 0);
  t.same(grafana?.allow, [
    { kind: 'set', name: 'office', cidrs: office },
    { kind: 'cidr', cidr: { family: 4, address: '198.51.100.7', prefix: 32, text: '198.51.100.7/32' } },
    { kind: 'any' },
  ]);
  const match = grafana!.match;
  t.same(match.port, { proto: 'tcp', from: 3000, to: 3001 });
  t.same(match.containerPort, { proto: 'tcp', from: 3000, to: 3000 });
  t.equal(match.container?.pattern, 'grafana*');
  t.ok(match.container?.test('grafana-1'));
  t.notOk(match.container?.test('my-grafana'));
  t.same([...match.labels!.keys()], ['tier', 'com.example.team']);
  t.ok(match.labels?.get('tier')?.test('frontend'));
  t.notOk(match.labels?.get('tier')?.test('backend'));
  t.equal(match.image, undefined);
  t.same(all, { name: 'all', index: 1, match: {}, allow: [] }, 'an empty selector matches everything; an empty allow list nobody');
});

t.test('containers: checks on when present, default severities, capability names normalised', async (t) => {
  const policy = valid(
    yaml(
      'version: 1',
      'containers:',
      '  capabilities: { forbidden: [sys_admin, CAP_NET_ADMIN, SYS_ADMIN, Sys_Module], action: kill }',
      '  privileged: { action: kill }',
      '  host-namespaces: { namespaces: [pid, net, cgroup], action: alert, severity: low }',
      '  docker-socket: { action: stop, paths: [/srv/run/docker.sock/, /run/docker.sock] }',
      '  sensitive-mounts: { paths: [/, /etc/], action: alert }',
      '  devices: { action: alert, allowed: [/dev/fuse] }',
      '  privileged-exec: { action: alert }',
      '  no-new-privileges: { action: alert }',
      '  seccomp-unconfined: { action: stop }',
      '  apparmor-unconfined: { action: stop }',
      '  root-user: { action: alert }',
      '  resource-limits: { require: [memory, pids], action: alert }',
      '  exceptions:',
      '    - match: { image: "docker.io/portainer/portainer-ce:*", label: { role: admin } }',
      '      allow: [docker-socket, capabilities]',
    ),
  );
  const { exceptions, stopGraceSeconds: _, ...checks } = policy.containers;
  t.same(checks, {
    capabilities: { action: 'kill', severity: 'high', forbidden: ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_MODULE'] },
    privileged: { action: 'kill', severity: 'critical' },
    hostNamespaces: { action: 'alert', severity: 'low', namespaces: ['pid', 'net', 'cgroup'] },
    dockerSocket: {
      action: 'stop',
      severity: 'critical',
      paths: ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/var/run/containerd/containerd.sock', '/srv/run/docker.sock'],
    },
    sensitiveMounts: { action: 'alert', severity: 'high', paths: ['/', '/etc'], allowed: [], readOnlyAllowed: false },
    devices: { action: 'alert', severity: 'medium', allowed: ['/dev/fuse'], allowedCgroupRules: [] },
    privilegedExec: { action: 'alert', severity: 'high' },
    noNewPrivileges: { action: 'alert', severity: 'low' },
    seccompUnconfined: { action: 'stop', severity: 'medium' },
    apparmorUnconfined: { action: 'stop', severity: 'medium' },
    rootUser: { action: 'alert', severity: 'low' },
    resourceLimits: { action: 'alert', severity: 'low', require: ['memory', 'pids'] },
  });
  t.equal(exceptions.length, 1);
  t.equal(exceptions[0]?.index, 0);
  t.same(exceptions[0]?.allow, ['docker-socket', 'capabilities']);
  t.ok(exceptions[0]?.match.image?.test('docker.io/portainer/portainer-ce:2.21'));
  t.ok(exceptions[0]?.match.labels?.get('role')?.test('admin'));

  const docker = valid('version: 1\ncontainers:\n  docker-socket: { action: kill }\n  sensitive-mounts: { paths: [/etc], action: kill, read-only-allowed: true }\n');
  t.equal(docker.containers.dockerSocket?.paths.length, 4, 'the default socket paths alone');
  t.equal(docker.containers.sensitiveMounts?.readOnlyAllowed, true);
});

t.test('images and volumes', async (t) => {
  const policy = valid(
    yaml(
      'version: 1',
      'images:',
      '  rules:',
      '    - { match: official, require: { digest-pinned: true } }',
      '    - { match: "registry.example.com/team/**" }',
      '    - { match: "localhost:5000/*" }',
      '  default: deny',
      '  action: stop',
      '  severity: high',
      '  exceptions: [{ container: "build-*" }]',
      'volumes:',
      '  selinux: { relabel: private, roots: [/srv/containers/, /data/x/../volumes] }',
    ),
  );
  const [official, team, local] = policy.images.rules;
  t.equal(official?.match.pattern, 'docker.io/library/*');
  t.ok(official?.match.test('docker.io/library/nginx:1.27'));
  t.notOk(official?.match.test('docker.io/someone/nginx:1'));
  t.same(official?.require, { digestPinned: true, signedBy: [], onUnreachable: 'deny' });
  t.equal(official?.index, 0);
  t.same(team?.require, { digestPinned: false, signedBy: [], onUnreachable: 'deny' });
  t.ok(team?.match.test('registry.example.com/team/a/b:1'));
  t.equal(local?.index, 2);
  t.same({ ...policy.images, rules: [], exceptions: [] }, { rules: [], default: 'deny', local: 'deny', registryAuth: null, insecureRegistries: [], action: 'stop', severity: 'high', exceptions: [] }, 'images.local follows images.default');
  t.equal(valid(yaml('version: 1', 'images: { default: deny, local: allow }')).images.local, 'allow');
  t.equal(valid(yaml('version: 1', 'images: { local: deny }')).images.local, 'deny');
  t.same(errors(yaml('version: 1', 'images: { local: yes }')), ['policy.yaml:2:18: images.local: "yes" is not allowed here; expected one of: deny, allow']);
  t.ok(policy.images.exceptions[0]?.container?.test('build-7'));
  t.same(policy.volumes, { create: [], selinux: { relabel: 'private', roots: ['/srv/containers', '/data/volumes'] } });
});

t.test('network: anti-spoofing on by default, per-network exceptions, strict keys', async (t) => {
  t.same(valid(yaml('version: 1', 'network:', '  anti-spoofing: off')).network, { antiSpoofing: false, exceptions: [] });
  t.same(valid(yaml('version: 1', 'network: { exceptions: [legacy-lan, legacy-lan, my_net.2] }')).network, { antiSpoofing: true, exceptions: ['legacy-lan', 'my_net.2'] });
  t.same(errors(yaml('version: 1', 'network:', '  anti-spoofing: yes', '  exception: [a]', '  exceptions: ["-x"]')), [
    'policy.yaml:3:18: network.anti-spoofing: "yes" is not allowed here; expected one of: on, off',
    'policy.yaml:4:3: network: unknown key "exception"; expected one of: anti-spoofing, exceptions',
    'policy.yaml:5:16: network.exceptions[0]: "-x" is not a Docker network name',
  ]);
});

t.test('the example policies are valid and say what they promise', async (t) => {
  const example = loadPolicyFile(join(CONFIG, 'policy.yaml'));
  if (!example.ok) throw new Error(example.errors.map(formatPolicyError).join('\n'));
  const { containers, images, ports, volumes, sources } = example.policy;
  t.same(
    containers.capabilities,
    {
      action: 'kill',
      severity: 'high',
      forbidden: [
        'SYS_MODULE', 'SYS_RAWIO', 'SYS_PACCT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'AUDIT_CONTROL', 'MAC_OVERRIDE',
        'MAC_ADMIN', 'SYSLOG', 'NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE', 'SYS_BOOT', 'DAC_READ_SEARCH', 'BPF', 'PERFMON',
      ].map((name) => `CAP_${name}`),
    },
  );
  const { exceptions, stopGraceSeconds, ...checks } = containers;
  t.equal(stopGraceSeconds, 10, "a stop's grace period by default");
  t.same(Object.fromEntries(Object.entries(checks).map(([check, settings]) => [check, settings.action])), {
    capabilities: 'kill', privileged: 'kill', hostNamespaces: 'alert', dockerSocket: 'kill', sensitiveMounts: 'alert', devices: 'alert', unmaskedPaths: 'alert', privilegedExec: 'alert',
    mountPropagation: 'alert', cgroupParent: 'alert', labelDisabled: 'alert',
  });
  t.same(exceptions.map((e) => [e.match.image?.pattern, e.allow]), [['docker.io/portainer/portainer-ce:*', ['docker-socket']]]);
  t.same([images.default, images.action], ['allow', 'alert'], 'a local test image passes');
  t.equal(ports.default, 'deny');
  t.ok(ports.rules.length >= 2);
  t.same(volumes.selinux, { relabel: 'shared', roots: ['/srv/containers'] });
  const addresses = [...sources.values()].flat().map((c) => c.text);
  t.notOk(addresses.some((a) => a.startsWith('203.0.113.')), 'no addresses the package registries resolve into');
  t.equal(example.policy.hash, createHash('sha256').update(readFileSync(join(CONFIG, 'policy.yaml'))).digest('hex'));

  const strict = loadPolicyFile(join(CONFIG, 'policy.strict.yaml'));
  if (!strict.ok) throw new Error(strict.errors.map(formatPolicyError).join('\n'));
  t.same(
    strict.policy.containers.capabilities?.forbidden,
    [
      'SYS_MODULE', 'SYS_RAWIO', 'SYS_PACCT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'AUDIT_CONTROL',
      'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'NET_ADMIN', 'SYS_ADMIN',
    ].map((name) => `CAP_${name}`),
  );
  t.notOk(strict.policy.containers.capabilities?.forbidden.some((c) => DOCKER_DEFAULT_CAPABILITIES.includes(c)), "Docker's defaults only when the admin asks");
  t.match(readFileSync(join(CONFIG, 'policy.strict.yaml'), 'utf8'), /To forbid some of them\n {4}# too, add them here/, 'and its comment says how');
});

t.test('unknown keys, at the key, at every depth, naming the keys that exist', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'port: {}',
        'ports:',
        '  rules:',
        '    - name: web',
        '      match: { containr: "web*" }',
        '      alow: [any]',
        'containers:',
        '  privileged: { action: kill, severty: high }',
        '  root: { action: alert }',
        'images:',
        '  rules: [{ match: official, require: { digest_pinned: true } }]',
      ),
    ),
    [
      'policy.yaml:2:1: unknown key "port"; expected one of: version, mode, sources, ports, containers, images, volumes, network',
      'policy.yaml:5:7: ports.rules[0]: missing required key "allow"',
      'policy.yaml:6:16: ports.rules[0].match: unknown key "containr"; expected one of: container, image, label, port, container-port',
      'policy.yaml:7:7: ports.rules[0]: unknown key "alow"; expected one of: name, match, allow',
      'policy.yaml:9:31: containers.privileged: unknown key "severty"; expected one of: action, severity',
      'policy.yaml:10:3: containers: unknown key "root"; expected one of: capabilities, privileged, host-namespaces, docker-socket, sensitive-mounts, devices, privileged-exec, no-new-privileges, seccomp-unconfined, apparmor-unconfined, root-user, unmasked-paths, resource-limits, read-only-root, restart-policy, wildcard-bind, privileged-ports, mount-propagation, cgroup-parent, healthcheck, ulimits, label-disabled, root-exec, default-bridge, exceptions, stop-grace-seconds',
      'policy.yaml:12:41: images.rules[0].require: unknown key "digest_pinned"; expected one of: digest-pinned, signed-by, on-unreachable',
    ],
  );
});

t.test('YAML errors keep the parser position', async (t) => {
  t.same(errors(yaml('version: 1', 'mode: audit', 'mode: enforce')), ['policy.yaml:3:1: duplicate key "mode"; each key may appear once per mapping'], 'duplicate key');
  t.same(errors(yaml('version: 1', 'ports:', '  rules: [ { name: a }')), ['policy.yaml:4:1: Flow sequence in block collection must be sufficiently indented and end with a ]']);
  t.same(errors(yaml('version: 1', 'mode: "audit')), ['policy.yaml:3:1: Missing closing "quote']);
  t.same(errors(yaml('version: 1', '---', 'version: 1')), ['policy.yaml:2:1: Source contains multiple documents; please use YAML.parseAllDocuments()']);
});

t.test('aliases cannot blow up the document: they count as what they expand to, located at the alias that passes the bound', async (t) => {
  const bomb = yaml(
    'a: &a [x, x, x, x, x, x, x, x, x, x]',
    'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
    'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
    'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
    'f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]',
  );
  t.same(errors(bomb), ['policy.yaml:6:9: the document expands to more than 250000 nodes (aliases count as what they refer to); at most 250000']);
  // The finding of issue 21: few references to one big list (130 KB, 22 s and 1.85 GB before).
  const addresses = Array.from({ length: 10_000 }, (_, i) => `bad-${i}`).join(', ');
  const amplified = yaml('version: 1', `sources: { a: &a [${addresses}], ${Array.from({ length: 98 }, (_, i) => `s${i}: *a`).join(', ')} }`);
  const found = errors(amplified);
  t.equal(found.length, 1, 'one error, not 990,000');
  t.match(found[0], /^policy\.yaml:2:\d+: the document expands to more than 250000 nodes/);
  t.same(
    errors('<<: { version: 1 }\n'),
    ['policy.yaml:1:1: missing "version: 1" (the policy format version)', 'policy.yaml:1:1: unknown key "<<"; expected one of: version, mode, sources, ports, containers, images, volumes, network'],
    'no merge keys',
  );
});

t.test('a document that is not a mapping', async (t) => {
  t.same(errors('- version: 1\n'), ['policy.yaml:1:1: [{"version":1}] is not a mapping; expected keys: version, mode, sources, ports, containers, images, volumes, network']);
  t.same(errors('"version: 1"\n'), ['policy.yaml:1:1: "version: 1" is not a mapping; expected keys: version, mode, sources, ports, containers, images, volumes, network']);
  t.same(errors(''), ['policy.yaml:1:1: the document is empty; expected a mapping with at least "version: 1"']);
  t.same(errors('# only a comment\n'), ['policy.yaml:1:1: the document is empty; expected a mapping with at least "version: 1"']);
});

t.test('version: required, and only 1', async (t) => {
  t.same(errors('mode: audit\n'), ['policy.yaml:1:1: missing "version: 1" (the policy format version)']);
  t.same(errors('version: 2\n'), ['policy.yaml:1:10: version: 2 is not a supported policy version; expected 1']);
  t.same(errors('version: "1"\n'), ['policy.yaml:1:10: version: "1" is not a supported policy version; expected 1']);
});

t.test('addresses and source sets', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'sources:',
        '  office: [198.51.100.0/24, 10.0.0.300/8, "fe80::1%eth0", "::ffff:198.51.100.7"]',
        '  Office: [198.51.100.1]',
        '  any: []',
        '  __proto__: []',
        '  lab: 198.51.100.0/24',
        'ports:',
        '  rules:',
        '    - name: web',
        '      match: { port: 443/tcp }',
        '      allow: [office, office2, 010.0.0.1, Bogus, 443]',
      ),
    ),
    [
      'policy.yaml:3:29: sources.office[1]: "10.0.0.300/8" is not an IP address or CIDR',
      'policy.yaml:3:43: sources.office[2]: "fe80::1%eth0" is not an IP address or CIDR',
      'policy.yaml:3:59: sources.office[3]: "::ffff:198.51.100.7" is not an IP address or CIDR; write IPv4-mapped addresses as plain IPv4',
      'policy.yaml:4:3: sources: "Office" is not a source set name; expected lower-case letters, digits, "-" and "_", starting with a letter',
      'policy.yaml:5:3: sources: "any" is reserved (it means every source); name the set something else',
      'policy.yaml:6:3: sources: unknown key "__proto__"; reserved, choose another name',
      'policy.yaml:7:8: sources.lab: "198.51.100.0/24" is not a list; write a list, e.g. ["198.51.100.0/24"]',
      'policy.yaml:12:23: ports.rules[0].allow[1]: "office2" is not a source set; defined sets: office, lab',
      'policy.yaml:12:32: ports.rules[0].allow[2]: "010.0.0.1" is not an IP address or CIDR',
      'policy.yaml:12:43: ports.rules[0].allow[3]: "Bogus" is not "any", an IP address or CIDR, or a source set; defined sets: office, lab',
      'policy.yaml:12:50: ports.rules[0].allow[4]: 443 is not "any", an IP address or CIDR, or a source set; quote it: "443"',
    ],
  );
  t.same(errors(yaml('version: 1', 'ports:', '  rules: [{ name: a, match: {}, allow: [office] }]')), [
    'policy.yaml:3:41: ports.rules[0].allow[0]: "office" is not a source set; no sets are defined under "sources"',
  ]);
});

t.test('port specs', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'ports:',
        '  rules:',
        '    - { name: a, match: { port: 80/tcpx }, allow: [any] }',
        '    - { name: b, match: { port: 443 }, allow: [any] }',
        '    - { name: c, match: { port: "8000-8100" }, allow: [any] }',
        '    - { name: d, match: { container-port: 70000/tcp }, allow: [any] }',
        '    - { name: e, match: { port: 8100-8000/udp }, allow: [any] }',
        '    - { name: f, match: { port: [443/tcp] }, allow: [any] }',
        '    - { name: g, match: { port: 0443/tcp }, allow: [any] }',
        '    - { name: h, match: { port: 0/tcp }, allow: [any] }',
      ),
    ),
    [
      'policy.yaml:4:33: ports.rules[0].match.port: "80/tcpx" is not a port spec; expected PORT/PROTO or FROM-TO/PROTO, e.g. 443/tcp',
      'policy.yaml:5:33: ports.rules[1].match.port: 443 is not a port spec; write it with its protocol, e.g. 443/tcp',
      'policy.yaml:6:33: ports.rules[2].match.port: "8000-8100" has no protocol; the protocol is required: 8000-8100/tcp, 8000-8100/udp or 8000-8100/sctp',
      'policy.yaml:7:43: ports.rules[3].match.container-port: "70000/tcp" is out of range; ports are 1-65535 and FROM <= TO',
      'policy.yaml:8:33: ports.rules[4].match.port: "8100-8000/udp" is out of range; ports are 1-65535 and FROM <= TO',
      'policy.yaml:9:33: ports.rules[5].match.port: ["443/tcp"] is not a port spec; expected PORT/PROTO or FROM-TO/PROTO, e.g. 443/tcp',
      'policy.yaml:10:33: ports.rules[6].match.port: "0443/tcp" is not a port spec; expected PORT/PROTO or FROM-TO/PROTO, e.g. 443/tcp',
      'policy.yaml:11:33: ports.rules[7].match.port: "0/tcp" is out of range; ports are 1-65535 and FROM <= TO',
    ],
  );
});

t.test('rule names: required, plain, unique', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'ports:',
        '  rules:',
        '    - { name: web, match: {}, allow: [any] }',
        '    - { name: db, match: {}, allow: [any] }',
        '    - { name: web, match: {}, allow: [any] }',
        '    - { match: {}, allow: [any] }',
        '    - { name: "my rule", match: {}, allow: [any] }',
        '    - { name: 7, match: {}, allow: [any] }',
      ),
    ),
    [
      'policy.yaml:6:15: ports.rules[2].name: "web" already names ports.rules[0]; rule names must be unique',
      'policy.yaml:7:7: ports.rules[3]: missing required key "name"',
      'policy.yaml:8:15: ports.rules[4].name: "my rule" is not a rule name; expected letters, digits, ".", "_" and "-", at most 63 characters',
      'policy.yaml:9:15: ports.rules[5].name: 7 is not a rule name; quote it: "7"',
    ],
  );
});

t.test('selectors: globs, image patterns, labels, no ports where they could never hold', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'ports:',
        '  rules:',
        '    - name: a',
        '      match: { container: "", image: "nginx:*", label: { __proto__: x, tier: 1 } }',
        '      allow: [any]',
        'containers:',
        '  exceptions:',
        '    - match: { image: "team/app:*", port: 9000/tcp }',
        '      allow: [docker-socket, socket]',
        'images:',
        '  rules: [{ match: "*" }]',
      ),
    ),
    [
      'policy.yaml:5:27: ports.rules[0].match.container: an empty pattern matches nothing; expected a glob, e.g. "web-*"',
      'policy.yaml:5:38: ports.rules[0].match.image: "nginx:*" never matches: image patterns match the normalised reference registry/path:tag; did you mean "docker.io/library/nginx:*"?',
      'policy.yaml:5:58: ports.rules[0].match.label: unknown key "__proto__"; reserved, choose another name',
      'policy.yaml:5:78: ports.rules[0].match.label.tier: 1 is not a glob pattern; quote it: "1"',
      'policy.yaml:9:23: containers.exceptions[0].match.image: "team/app:*" never matches: image patterns match the normalised reference registry/path:tag; did you mean "docker.io/team/app:*"?',
      'policy.yaml:9:37: containers.exceptions[0].match: unknown key "port"; expected one of: container, image, label',
      'policy.yaml:10:30: containers.exceptions[0].allow[1]: "socket" is not allowed here; expected one of: capabilities, privileged, host-namespaces, docker-socket, sensitive-mounts, devices, privileged-exec, no-new-privileges, seccomp-unconfined, apparmor-unconfined, resource-limits, root-user, unmasked-paths, read-only-root, restart-policy, wildcard-bind, privileged-ports, mount-propagation, cgroup-parent, healthcheck, ulimits, label-disabled, root-exec, default-bridge',
      'policy.yaml:12:20: images.rules[0].match: "*" never matches: image patterns match the normalised reference registry/path:tag; did you mean "docker.io/library/*"?',
    ],
  );
  t.same(errors(yaml('version: 1', 'ports:', '  rules: [{ name: a, match: { label: { com.example/x y: 1 } }, allow: [] }]')), [
    'policy.yaml:3:57: ports.rules[0].match.label["com.example/x y"]: 1 is not a glob pattern; quote it: "1"',
  ], 'odd keys are quoted in the path');
  t.same(errors(yaml('version: 1', 'ports:', '  rules: [{ name: a, match: { label: { "": x } }, allow: [] }]')), [
    'policy.yaml:3:40: ports.rules[0].match.label: an empty label key; expected a label name',
  ]);
});

t.test('checks: capabilities, enums, required settings, paths', async (t) => {
  t.same(
    errors(
      yaml(
        'version: 1',
        'containers:',
        '  capabilities: { forbidden: [SYS_ADMIN, SYS_ADMN, ALL], action: kill }',
        '  privileged: { action: nuke }',
        '  host-namespaces: { namespaces: [], action: alert }',
        '  docker-socket: { severity: high }',
        '  sensitive-mounts: { paths: [etc], action: alert, read-only-allowed: "yes" }',
        '  privileged-exec:',
        '  resource-limits: { require: [memory, disk], action: alert, severity: urgent }',
      ),
    ),
    [
      'policy.yaml:3:42: containers.capabilities.forbidden[1]: "SYS_ADMN" is not a Linux capability (e.g. SYS_ADMIN, NET_ADMIN)',
      'policy.yaml:3:52: containers.capabilities.forbidden[2]: "ALL" cannot be forbidden as a whole; list the capabilities, e.g. SYS_ADMIN, NET_ADMIN',
      'policy.yaml:4:25: containers.privileged.action: "nuke" is not allowed here; expected one of: alert, stop, kill',
      'policy.yaml:5:34: containers.host-namespaces.namespaces: [] is empty; expected at least 1 item',
      'policy.yaml:6:18: containers.docker-socket: missing required key "action"',
      'policy.yaml:7:31: containers.sensitive-mounts.paths[0]: "etc" is not an absolute path; expected e.g. /srv/containers',
      'policy.yaml:7:71: containers.sensitive-mounts.read-only-allowed: "yes" is not true or false',
      'policy.yaml:8:19: containers.privileged-exec: null is not a mapping; expected keys: action, severity',
      'policy.yaml:9:40: containers.resource-limits.require[1]: "disk" is not allowed here; expected one of: memory, pids, cpu',
      'policy.yaml:9:72: containers.resource-limits.severity: "urgent" is not allowed here; expected one of: low, medium, high, critical',
    ],
  );
});

t.test('wrong types', async (t) => {
  t.same(
    errors(yaml('version: 1', 'mode: 1', 'ports:', '  default: true', '  rules: { name: a }', 'images: []', 'volumes: { selinux: { roots: /srv/containers } }')),
    [
      'policy.yaml:2:7: mode: 1 is not allowed here; expected one of: enforce, audit',
      'policy.yaml:4:12: ports.default: true is not allowed here; expected one of: deny, allow',
      'policy.yaml:5:10: ports.rules: {"name":"a"} is not a list',
      'policy.yaml:6:9: images: [] is not a mapping; expected keys: rules, default, local, action, severity, exceptions, latest-tag, healthcheck, keys, registry-auth, insecure-registries',
      'policy.yaml:7:30: volumes.selinux.roots: "/srv/containers" is not a list; write a list, e.g. ["/srv/containers"]',
    ],
  );
});

t.test('SELinux relabel roots: absolute, and never a system directory', async (t) => {
  t.same(
    errors(yaml('version: 1', 'volumes:', '  selinux:', '    relabel: shared', '    roots: [/srv/containers, /var/lib/, /srv/containers/../.., /srv, srv/containers]')),
    [
      'policy.yaml:5:30: volumes.selinux.roots[1]: "/var/lib/" (/var/lib) is a system directory and cannot be a relabel root; use a directory of its own, e.g. /srv/containers',
      'policy.yaml:5:41: volumes.selinux.roots[2]: "/srv/containers/../.." (/) is a system directory and cannot be a relabel root; use a directory of its own, e.g. /srv/containers',
      'policy.yaml:5:64: volumes.selinux.roots[3]: "/srv" is a system directory and cannot be a relabel root; use a directory of its own, e.g. /srv/containers',
      'policy.yaml:5:70: volumes.selinux.roots[4]: "srv/containers" is not an absolute path; expected e.g. /srv/containers',
    ],
  );
});

t.test('a huge value is quoted short, control characters escaped', async (t) => {
  const [error] = errors(`version: 1\nmode: "${'x'.repeat(1_000_000)}"\n`);
  t.equal(error, `policy.yaml:2:7: mode: "${'x'.repeat(80)}"… (1000000 characters) is not allowed here; expected one of: enforce, audit`);
  t.same(errors('version: 1\nmode: "\\e[31mred"\n'), ['policy.yaml:2:7: mode: "\\u001b[31mred" is not allowed here; expected one of: enforce, audit']);
  const long = 'k'.repeat(1000); // YAML caps implicit keys at 1024 characters
  const found = errors(
    yaml('version: 1', 'sources:', `  ${long}: []`, 'ports:', '  rules:', `    - { name: a, match: { label: { ${long}: 1 } }, allow: [nope, ${long}x] }`),
  );
  t.equal(found.length, 3);
  for (const error of found) t.ok(error.length < 400, error.slice(0, 400));
});

t.test('every error at once, in file order', async (t) => {
  const found = errors(yaml('mode: x', 'ports:', '  rules:', '    - { name: a, match: { port: 1/tcp }, allow: [nope] }', '    - { name: a, match: {}, allow: [any] }'));
  t.same(found, [
    'policy.yaml:1:1: missing "version: 1" (the policy format version)',
    'policy.yaml:1:7: mode: "x" is not allowed here; expected one of: enforce, audit',
    'policy.yaml:4:50: ports.rules[0].allow[0]: "nope" is not a source set; no sets are defined under "sources"',
    'policy.yaml:5:15: ports.rules[1].name: "a" already names ports.rules[0]; rule names must be unique',
  ]);
});

t.test('loadPolicyFile reads the file; what cannot be read is an error, not a throw', async (t) => {
  const dir = t.testdir({ 'ok.yaml': '\ufeffversion: 1\n', 'bad.yaml': 'version: 1\nmode: x\n', 'latin1.yaml': Buffer.from('version: 1\n# caf\xe9\n', 'latin1') });
  const ok = loadPolicyFile(join(dir, 'ok.yaml'));
  t.ok(ok.ok);
  if (ok.ok) {
    t.equal(ok.policy.file, join(dir, 'ok.yaml'));
    t.equal(ok.policy.hash, createHash('sha256').update(readFileSync(join(dir, 'ok.yaml'))).digest('hex'), 'the hash of the bytes, BOM included');
  }
  const bad = loadPolicyFile(join(dir, 'bad.yaml'));
  t.same(bad.ok ? [] : bad.errors.map(formatPolicyError), [`${join(dir, 'bad.yaml')}:2:7: mode: "x" is not allowed here; expected one of: enforce, audit`]);

  const missing = loadPolicyFile(join(dir, 'missing.yaml'));
  t.same(missing.ok ? [] : missing.errors.map(formatPolicyError), [
    `${join(dir, 'missing.yaml')}: cannot read the policy: ENOENT: no such file or directory, open '${join(dir, 'missing.yaml')}'`,
  ]);
  const directory = loadPolicyFile(dir);
  t.same(directory.ok ? [] : directory.errors.map((e) => [e.line, e.column, e.path]), [[0, 0, '']]);
  const latin1 = loadPolicyFile(join(dir, 'latin1.yaml'));
  t.same(latin1.ok ? [] : latin1.errors.map(formatPolicyError), [`${join(dir, 'latin1.yaml')}: the policy is not valid UTF-8`]);
  writeFileSync(join(dir, 'ok.yaml'), 'version: 2\n');
  t.notOk(loadPolicyFile(join(dir, 'ok.yaml')).ok, 'read afresh on every call');
});

t.test('errors are data: file, line, column, path, message', async (t) => {
  const result = parsePolicy('version: 1\nports: { rules: [{ name: a, match: {}, allow: [10.0.0.300/8] }] }\n', 'policy.yaml');
  t.same(result, {
    ok: false,
    errors: [{ file: 'policy.yaml', line: 2, column: 48, path: 'ports.rules[0].allow[0]', message: '"10.0.0.300/8" is not an IP address or CIDR' }],
  });
  t.equal(formatPolicyError({ file: 'p.yaml', line: 0, column: 0, path: '', message: 'm' }), 'p.yaml: m');
  t.equal(formatPolicyError({ file: 'p.yaml', line: 3, column: 5, path: '', message: 'm' }), 'p.yaml:3:5: m');
});

t.test("containers.stop-grace-seconds: a stop's grace period, a whole number of seconds up to 120", async (t) => {
  t.equal(valid(yaml('version: 1', 'containers:', '  stop-grace-seconds: 3')).containers.stopGraceSeconds, 3);
  t.equal(valid(yaml('version: 1', 'containers:', '  stop-grace-seconds: 0')).containers.stopGraceSeconds, 0, '0: SIGKILL right after SIGTERM');
  for (const bad of ['121', '-1', '1.5', 'ten']) {
    t.match(errors(yaml('version: 1', 'containers:', `  stop-grace-seconds: ${bad}`)), [/^policy\.yaml:3:23: containers\.stop-grace-seconds: /], bad);
  }
});

// ---------------------------------------------------------------------------------------------------
// Issue 21: no policy can crash, hang or stall the loader

t.test('a recursive alias is a located error, also where a scalar is expected and the mapping has a toString key', async (t) => {
  t.same(errors('version: &a {toString: 1, a: *a}\n'), ['policy.yaml:1:30: alias *a refers to a node that contains it; a recursive structure is not allowed']);
  t.same(errors('version: 1\nsources: &s { a: [*s] }\n'), ['policy.yaml:2:19: alias *s refers to a node that contains it; a recursive structure is not allowed']);
  t.match(errors('version: 1\nmode: {valueOf: 1, toString: 2, toJSON: 3}\n')[0], /^policy\.yaml:2:7: mode: \{"valueOf":1,"toString":2,"toJSON":3\} is not allowed here/);
});

t.test('duplicate keys are compared as YAML resolves them, in every mapping', async (t) => {
  const pairs = [
    ['true', '"true"'],
    ['1', '"1"'],
    ['0x1', '"1"'],
    ['.inf', '"Infinity"'],
    ['~', '""'],
  ];
  for (const [a, b] of pairs) {
    t.same(errors(`version: 1\nports:\n  rules:\n    - name: r\n      match: { label: { ${a}: x, ${b}: y } }\n      allow: [any]\n`), [
      `policy.yaml:5:${30 + a!.length}: duplicate key ${JSON.stringify(b === '""' ? '' : JSON.parse(b!))}; each key may appear once per mapping`,
    ], `${a} and ${b}`);
  }
  // YAML 1.1 reads `on` as true and `010` as 8.
  t.same(errors('%YAML 1.1\n---\nversion: 1\nsources: { on: [198.51.100.1], "true": [198.51.100.2] }\n'), ['policy.yaml:4:32: duplicate key "true"; each key may appear once per mapping']);
  t.same(errors('%YAML 1.1\n---\nversion: 1\nsources: { 010: [198.51.100.1], "8": [198.51.100.2] }\n'), ['policy.yaml:4:33: duplicate key "8"; each key may appear once per mapping']);
});

t.test('merge keys (YAML 1.1) and aliases: errors located where the value is written, not at 1:1', async (t) => {
  t.same(errors('%YAML 1.1\n---\nversion: 1\nsources: &base\n  office: [10.0.0.300]\nports:\n  rules:\n    - name: r\n      match: {}\n      allow: [*base]\n'), [
    'policy.yaml:5:12: sources.office[0]: "10.0.0.300" is not an IP address or CIDR',
    'policy.yaml:10:15: ports.rules[0].allow[0]: {"office":["10.0.0.300"]} is not "any", an IP address or CIDR, or a source set',
  ]);
  t.same(errors('%YAML 1.1\n---\nx: &m { mode: loud }\n'), ['policy.yaml:3:1: missing "version: 1" (the policy format version)', 'policy.yaml:3:1: unknown key "x"; expected one of: version, mode, sources, ports, containers, images, volumes, network']);
  const merged = errors('%YAML 1.1\n---\nversion: 1\ncontainers:\n  privileged: &p { action: nuke }\n  host-namespaces:\n    <<: *p\n    namespaces: [pid]\n');
  t.same(merged, [
    'policy.yaml:5:28: containers.privileged.action: "nuke" is not allowed here; expected one of: alert, stop, kill',
    'policy.yaml:5:28: containers.host-namespaces.action: "nuke" is not allowed here; expected one of: alert, stop, kill',
  ]);
  t.same(valid('%YAML 1.1\n---\nversion: 1\ncontainers:\n  privileged: &p { action: kill }\n  host-namespaces:\n    <<: *p\n    namespaces: [pid]\n').containers.hostNamespaces?.action, 'kill');
});

t.test('nesting: a located error naming the bound, never a stack overflow', async (t) => {
  const flow = errors(`version: 1\nsources: ${'['.repeat(5_000)}\n`);
  t.ok(flow.length >= 1 && flow.length <= 101);
  t.match(flow[0], /^policy\.yaml:2:\d+: the document nests too deeply; at most 100 levels$/);
  t.notOk(flow.some((e) => /call stack/.test(e)));
  const block = Array.from({ length: 150 }, (_, i) => `${' '.repeat(i)}a:`).join('\n');
  t.same(errors(`${block}\n`), ['policy.yaml:101:101: the document nests deeper than 100 levels; at most 100']);
});

t.test('CR-only line endings are line breaks', async (t) => {
  t.equal(valid('version: 1\rmode: audit\r').mode, 'audit');
  t.same(errors('version: 1\rmode: x\r'), ['policy.yaml:2:7: mode: "x" is not allowed here; expected one of: enforce, audit']);
});

t.test('capability names with non-ASCII look-alikes are refused, not mapped', async (t) => {
  // U+017F LATIN SMALL LETTER LONG S and U+0131 DOTLESS I upper-case to S and I.
  t.same(errors('version: 1\ncontainers:\n  capabilities: { forbidden: [\u017Fys_admin, SYS_\u0131PC_LOCK], action: kill }\n'), [
    'policy.yaml:3:31: containers.capabilities.forbidden[0]: "\u017Fys_admin" is not a Linux capability; capability names are ASCII letters, digits and "_" (e.g. SYS_ADMIN)',
    'policy.yaml:3:42: containers.capabilities.forbidden[1]: "SYS_\u0131PC_LOCK" is not a Linux capability; capability names are ASCII letters, digits and "_" (e.g. SYS_ADMIN)',
  ]);
});

t.test('bounds: keys, errors reported, file size; each a located error naming it', async (t) => {
  // 40,000 unknown keys (the finding took 33 s): every one an error, the first 100 reported and a count of the rest.
  const many = errors(`version: 1\n${Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n')}\n`);
  t.equal(many.length, 101);
  t.equal(many[0], 'policy.yaml:2:1: unknown key "k0"; expected one of: version, mode, sources, ports, containers, images, volumes, network');
  t.equal(many[100], 'policy.yaml:101:1: and 39900 more errors (only the first 100 are reported)');
  const keys = errors(`version: 1\nsources:\n${Array.from({ length: 100_000 }, (_, i) => `  s${i}: []`).join('\n')}\n`);
  t.same(keys, ['policy.yaml:100001:3: the document has more than 100000 keys; at most 100000']);
  const dir = t.testdir({ 'big.yaml': `version: 1\n${'#'.repeat(4 * 1024 * 1024)}\n` });
  const big = loadPolicyFile(join(dir, 'big.yaml'));
  t.same(big.ok ? [] : big.errors.map(formatPolicyError), [`${join(dir, 'big.yaml')}: the policy is 4194316 bytes; at most 4194304 bytes (4 MiB) are read`]);
});

t.test('a key named __proto__ stays data: no prototype is replaced', async (t) => {
  t.same(errors('version: 1\n__proto__: { mode: audit }\n'), ['policy.yaml:2:1: unknown key "__proto__"; expected one of: version, mode, sources, ports, containers, images, volumes, network']);
  t.equal(({} as Record<string, unknown>).mode, undefined);
});

t.test('errors in malformed input are located inside the file (found by the fuzz suite: yaml counted lines short)', async (t) => {
  const strict = readFileSync(join(CONFIG, 'policy.strict.yaml'), 'utf8');
  const text = strict.replace(/^# dockwarden/, '# dockwarden poversion: !!str 1\napability - ant').replace('userns]', 'us\rrns]');
  const result = parsePolicy(text, 'policy.yaml');
  t.notOk(result.ok);
  const lines = text.split(/\r\n|\r|\n/);
  const outside = result.ok ? [] : result.errors.filter((e) => e.line < 1 || e.line > lines.length || e.column < 1 || e.column > lines[e.line - 1]!.length + 1);
  t.same(outside, []);
});
