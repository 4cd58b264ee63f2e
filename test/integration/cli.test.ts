import t from 'tap';
import { dirname, join } from 'node:path';
import { dockwarden } from '../helpers/cli.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';

const POLICY = `version: 1
mode: audit
sources:
  clients: [198.51.100.0/24]
ports:
  default: deny
  rules:
    - name: web
      match: { port: 18081/tcp }
      allow: [clients, 198.51.100.200]
    - name: status-web
      match: { port: 18091/tcp }
      allow: [clients, 198.51.100.200]
    - name: everything-tcp
      match: { port: 1-65535/tcp }
      allow: [any]
`;

t.before(removeTestContainers);
t.teardown(removeTestContainers);

t.test('policy validate: 0 for a valid file, 1 with located messages for an invalid one', async (t) => {
  const dir = t.testdir({ 'good.yaml': POLICY, 'bad.yaml': POLICY.replace('18081/tcp', '18081/tpc').replace('[clients', '[client') });
  const good = await dockwarden(['policy', 'validate', join(dir, 'good.yaml')]);
  t.equal(good.code, 0);
  t.match(good.stdout, /good\.yaml: valid \(mode audit, sha256 [0-9a-f]{12}\)/);
  const bad = await dockwarden(['policy', 'validate', join(dir, 'bad.yaml')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad\.yaml:9:22: ports\.rules\[0\]\.match\.port: "18081\/tpc" /);
  t.match(bad.stderr, /bad\.yaml:10:15: ports\.rules\[0\]\.allow\[0\]: "client" is not a source set; defined sets: clients/);
  t.match(bad.stderr, /2 errors; the policy was not accepted/);
});

t.test('policy validate with no file validates the configured policy', async (t) => {
  const dir = t.testdir({ 'policy.yaml': POLICY });
  const result = await dockwarden(['policy', 'validate'], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml') });
  t.equal(result.code, 0, result.stderr);
});

t.test('policy explain: which rules match each published port and what decides', async (t) => {
  const dir = t.testdir({ 'policy.yaml': POLICY });
  const env = { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET };
  const name = `dw-explain-${process.pid}`;
  await runContainer({ name, publish: ['18081:80/tcp', '18082:81/tcp', '18083:53/udp'] });

  const json = await dockwarden(['policy', 'explain', name, '--json'], env);
  t.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { container: { name: string; image: string }; ports: Array<{ port: string; matchingRules: string[]; decidedBy: string; allow: unknown }> };
  t.equal(report.container.name, name);
  t.equal(report.container.image, 'docker.io/dw-test/busybox:1');
  const byPort = new Map(report.ports.map((p) => [p.port, p]));
  t.same(byPort.get('0.0.0.0:18081/tcp'), {
    port: '0.0.0.0:18081/tcp',
    containerPort: 80,
    matchingRules: ['web (ports.rules[0])', 'everything-tcp (ports.rules[2])'],
    decidedBy: 'web',
    allow: ['198.51.100.0/24', '198.51.100.200/32'],
  });
  t.same(byPort.get('0.0.0.0:18082/tcp')?.allow, 'any');
  t.same(byPort.get('0.0.0.0:18083/udp'), { port: '0.0.0.0:18083/udp', containerPort: 53, matchingRules: [], decidedBy: 'ports.default: deny', allow: [] });

  const text = await dockwarden(['policy', 'explain', name], env);
  t.equal(text.code, 0);
  t.match(text.stdout, /0\.0\.0\.0:18081\/tcp → 80: 198\.51\.100\.0\/24, 198\.51\.100\.200\/32\n\s+decided by web\n\s+also matching, not deciding: everything-tcp \(ports\.rules\[2\]\)/);
  t.match(text.stdout, /0\.0\.0\.0:18083\/udp → 53: nobody\n\s+decided by ports\.default: deny/);
});

t.test('policy explain of a missing container: exit 2 and a clear message', async (t) => {
  const dir = t.testdir({ 'policy.yaml': POLICY });
  const result = await dockwarden(['policy', 'explain', 'no-such-container'], { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET });
  t.equal(result.code, 2);
  t.equal(result.stderr, 'dockwarden: no such container: no-such-container\n');
});

t.test('usage errors and bad configuration exit 2 with the reason', async (t) => {
  const unknown = await dockwarden(['frobnicate', 'now']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command: frobnicate now\n\nusage: dockwarden/);

  const dir = t.testdir({ 'config.yaml': 'docker:\n  socket: /run/docker.sock\nlogg:\n  level: info\n' });
  const bad = await dockwarden(['policy', 'validate', '--config', join(dir, 'config.yaml')]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /invalid configuration:\n.*config\.yaml:3:1: logg: unknown setting; known settings: docker\.socket/);
  // Issue 21: `policy validate FILE --config CFG` used to ignore CFG.
  const policy = join(t.testdir({ 'policy.yaml': POLICY, 'config.yaml': 'logg:\n  level: info\n' }), 'policy.yaml');
  const withFile = await dockwarden(['policy', 'validate', policy, '--config', join(dirname(policy), 'config.yaml')]);
  t.equal(withFile.code, 2, withFile.stdout);
  t.match(withFile.stderr, /invalid configuration:\n.*config\.yaml:1:1: logg: unknown setting/);

  const help = await dockwarden(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /^usage: dockwarden <command>/);
});

t.test('status: every published port, who may reach it, and whether the kernel matches', async (t) => {
  const dir = t.testdir({ 'policy.yaml': POLICY });
  const env = { DOCKWARDEN_POLICY: join(dir, 'policy.yaml'), DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_FIREWALL_BACKEND: 'nftables', DOCKWARDEN_STATE_DIR: join(dir, 'state') };
  await dockwarden(['firewall', 'remove'], env);
  const name = `dw-status-${process.pid}`;
  await runContainer({ name, publish: ['18091:80/tcp'], labels: { 'dockwarden.ports.allow': '198.51.100.200' } });

  const before = await dockwarden(['status', '--json'], env);
  t.equal(before.code, 0, before.stderr);
  const report = JSON.parse(before.stdout) as { firewall: { inSync: boolean; drift: string }; containers: Array<{ name: string; ports: Array<{ port: string; rule: string; allow: string[]; note: string }> }> };
  t.same(report.firewall, { backend: 'nftables', inSync: false, drift: 'table inet dockwarden is missing' });
  const mine = report.containers.find((c) => c.name === name)!;
  t.same(mine.ports.find((p) => p.port === '0.0.0.0:18091/tcp'), { port: '0.0.0.0:18091/tcp', containerPort: 80, rule: 'status-web', allow: ['198.51.100.200/32'], note: 'narrowed by label' });

  const baseline = await dockwarden(['firewall', 'baseline'], env);
  t.equal(baseline.code, 0, baseline.stderr);
  t.match(baseline.stdout, /nftables baseline installed \(new connections to unjudged published ports are dropped\)/);
  t.match((await dockwarden(['firewall', 'baseline'], env)).stdout, /already installed; left as it is/, 'idempotent');
  const shown = await dockwarden(['firewall', 'show'], env);
  t.match(shown.stdout, /table inet dockwarden \{[\s\S]*chain published/);
  t.match(shown.stdout, /set bridges \{[^}]*elements = \{ "docker0" \}/, 'a host dockwarden never saw: Docker\'s default bridge is covered');

  const text = await dockwarden(['status'], env);
  t.match(text.stdout, /^firewall   nftables: NOT in sync: set elements differ from what dockwarden applied/, 'a bare baseline lacks the allowances');
  t.match(text.stdout, new RegExp(`${name} \\([0-9a-f]{12}\\)\\n  0\\.0\\.0\\.0:18091/tcp → 80  198\\.51\\.100\\.200/32  \\[status-web\\]  \\(narrowed by label\\)`));

  t.equal((await dockwarden(['firewall', 'remove'], env)).code, 0);
  t.match((await dockwarden(['firewall', 'show'], env)).stdout, /not installed/);
});
