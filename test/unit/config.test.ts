import { chmodSync, writeFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { ConfigInvalid, loadConfig } from '../../src/app/config.js';

function configFile(t: Test, text: string): string {
  const dir = t.testdir({ 'config.yaml': text });
  return `${dir}/config.yaml`;
}

function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigInvalid) return error.message.split('\n');
    throw error;
  }
  throw new Error('expected ConfigInvalid');
}

t.test('defaults for everything a file leaves out', async (t) => {
  const config = loadConfig(configFile(t, '# nothing set\n'), {});
  t.equal(config.docker.socket, '/var/run/docker.sock');
  t.equal(config.policy.file, '/etc/dockwarden/policy.yaml');
  t.equal(config.firewall.backend, 'auto');
  t.equal(config.state.dir, '/var/lib/dockwarden');
  t.equal(config.log.level, 'info');
});

t.test('file values, then environment overrides', async (t) => {
  const file = configFile(t, 'docker:\n  socket: /run/dw/docker.sock\nlog:\n  level: debug\n');
  t.equal(loadConfig(file, {}).docker.socket, '/run/dw/docker.sock');
  const config = loadConfig(file, { DOCKWARDEN_DOCKER_SOCKET: '/run/other.sock', DOCKWARDEN_STATE_DIR: '/tmp/dw-state' });
  t.equal(config.docker.socket, '/run/other.sock');
  t.equal(config.state.dir, '/tmp/dw-state');
  t.equal(config.log.level, 'debug');
});

t.test('an unknown key is located at the key and lists the known settings', async (t) => {
  const file = configFile(t, 'docker:\n  socket: /run/docker.sock\n  sokcet: /x\n');
  const [message] = errorsOf(() => loadConfig(file, {}));
  t.match(message, new RegExp(`^${file}:3:3: docker\\.sokcet: unknown setting; known settings: docker\\.socket, docker\\.timeoutMs, `));
});

t.test('a bad value is located at the value and says what is allowed', async (t) => {
  const file = configFile(t, 'firewall:\n  backend: ufw\nstate:\n  dir: relative/dir\n');
  const errors = errorsOf(() => loadConfig(file, {}));
  t.equal(errors.length, 2);
  t.ok(errors.includes(`${file}:2:12: firewall.backend: must be one of the possible values: ["auto","nftables","iptables"]: value was "ufw"`), errors.join('\n'));
  t.ok(errors.includes(`${file}:4:8: state.dir: must be an absolute path: value was "relative/dir"`), errors.join('\n'));
});

t.test('a bad environment override names the variable', async (t) => {
  const errors = errorsOf(() => loadConfig(configFile(t, ''), { DOCKWARDEN_LOG_LEVEL: 'loud' }));
  t.match(errors[0], /log\.level: must be one of the possible values: .*value was "loud" \(from environment variable DOCKWARDEN_LOG_LEVEL\)$/);
});

t.test('YAML syntax errors and duplicate keys are located', async (t) => {
  t.match(errorsOf(() => loadConfig(configFile(t, 'docker:\n  socket: [\n'), {}))[0], /config\.yaml:\d+:\d+: /);
  const dup = errorsOf(() => loadConfig(configFile(t, 'log:\n  level: info\nlog:\n  level: warn\n'), {}));
  t.match(dup[0], /config\.yaml:3:1: duplicate key "log"; each key may appear once per mapping$/);
});

t.test('a config file asked for but missing is an error, not defaults', async (t) => {
  t.match(errorsOf(() => loadConfig('/nonexistent/dockwarden.yaml', {}))[0], /^\/nonexistent\/dockwarden\.yaml:0:0: cannot read: ENOENT/);
});

t.test('periods of zero are refused: they would spin the daemon', async (t) => {
  const file = configFile(t, 'reconcile:\n  intervalSeconds: 0\nfirewall:\n  driftCheckSeconds: 0\n');
  const errors = errorsOf(() => loadConfig(file, {}));
  t.ok(errors.includes(`${file}:2:20: reconcile.intervalSeconds: must be a whole number of at least 1`), errors.join('\n'));
  t.ok(errors.includes(`${file}:4:22: firewall.driftCheckSeconds: must be a whole number of at least 1`), errors.join('\n'));
});

t.test('alerts default to the log only', async (t) => {
  const { alerts } = loadConfig(configFile(t, ''), {});
  t.same(alerts, {
    syslog: { target: '', facility: 'daemon', appName: 'dockwarden', minSeverity: 'info', timeoutMs: 5000 },
    webhooks: [],
    dedupeWindowSeconds: 300,
    queueLimit: 10000,
  });
});

t.test('syslog and webhooks as written, entry defaults filled in', async (t) => {
  const file = configFile(
    t,
    `alerts:
  syslog: { target: "tcp://127.0.0.1:601", facility: local4, appName: dw, minSeverity: medium }
  webhooks:
    - url: https://hooks.example.com/dw
      secret: whsec_c2VjcmV0
    - { url: "http://127.0.0.1:9/x", secretFile: /etc/dockwarden/hook.secret, format: alertmanager, minSeverity: high, timeoutMs: 1500 }
  dedupeWindowSeconds: 0
  queueLimit: 50
`,
  );
  const { alerts } = loadConfig(file, {});
  t.same(alerts.syslog, { target: 'tcp://127.0.0.1:601', facility: 'local4', appName: 'dw', minSeverity: 'medium', timeoutMs: 5000 });
  t.same(alerts.webhooks, [
    { url: 'https://hooks.example.com/dw', secret: 'whsec_c2VjcmV0', format: 'standard', minSeverity: 'info', timeoutMs: 5000 },
    { url: 'http://127.0.0.1:9/x', secretFile: '/etc/dockwarden/hook.secret', format: 'alertmanager', minSeverity: 'high', timeoutMs: 1500 },
  ]);
  t.same([alerts.dedupeWindowSeconds, alerts.queueLimit], [0, 50]);
});

t.test('each bad webhook entry is its own error, located at the key or value, and no secret is echoed', async (t) => {
  const file = configFile(
    t,
    `alerts:
  webhooks:
    - url: https://ok.example.com/
      secret: whsec_dG9wLXNlY3JldA==
    - url: ftp://files.example.com/
      secret: whsec_dG9wLXNlY3JldA==
      formt: slack
    - url: https://user:pw@example.com/
      format: standard
    - url: https://example.com/
      secret: s
      secretFile: relative
      minSeverity: urgent
      timeoutMs: 0
    - just a string
`,
  );
  const errors = errorsOf(() => loadConfig(file, {}));
  const expected = [
    `${file}:5:12: alerts.webhooks: [1].url: must be an http:// or https:// URL`,
    `${file}:7:7: alerts.webhooks: [1].formt: unknown key; known keys: url, secret, secretFile, format, minSeverity, timeoutMs`,
    `${file}:8:12: alerts.webhooks: [2].url: must not carry credentials; use secret or secretFile`,
    `${file}:8:7: alerts.webhooks: [2]: needs secret or secretFile: standard webhooks are signed`,
    `${file}:12:19: alerts.webhooks: [3].secretFile: must be an absolute path`,
    `${file}:12:19: alerts.webhooks: [3].secretFile: give secret or secretFile, not both`,
    `${file}:13:20: alerts.webhooks: [3].minSeverity: must be one of info, low, medium, high, critical`,
    `${file}:14:18: alerts.webhooks: [3].timeoutMs: must be a whole number of at least 1`,
    `${file}:15:7: alerts.webhooks: [4]: must be a mapping with url and secret or secretFile`,
  ];
  t.same(errors.sort(), expected.sort());
  t.notOk(errors.join('\n').includes('dG9wLXNlY3JldA'), 'the secret is not in any message');
});

t.test('syslog settings are checked and located', async (t) => {
  const file = configFile(t, 'alerts:\n  syslog:\n    target: syslog.example.com\n    facility: kernel\n    appName: "dock warden"\n    severity: high\n');
  const errors = errorsOf(() => loadConfig(file, {}));
  t.equal(errors.length, 4, errors.join('\n'));
  t.ok(errors.includes(`${file}:3:13: alerts.syslog.target: must be udp://HOST:PORT, tcp://HOST:PORT or unix:/ABSOLUTE/PATH: value was "syslog.example.com"`), errors.join('\n'));
  t.ok(errors.some((e) => e.startsWith(`${file}:4:15: alerts.syslog.facility: must be one of the possible values: ["kern","user",`)), errors.join('\n'));
  t.ok(errors.includes(`${file}:5:14: alerts.syslog.appName: must be 1 to 48 printable ASCII characters, no spaces: value was "dock warden"`), errors.join('\n'));
  t.ok(errors.some((e) => e.startsWith(`${file}:6:5: alerts.syslog.severity: unknown setting`)), errors.join('\n'));
});

t.test('selinux.enabled: auto by default; true, false, or the environment', async (t) => {
  t.equal(loadConfig(configFile(t, ''), {}).selinux.enabled, 'auto');
  t.equal(loadConfig(configFile(t, 'selinux:\n  enabled: true\n'), {}).selinux.enabled, true);
  t.equal(loadConfig(configFile(t, 'selinux:\n  enabled: true\n'), { DOCKWARDEN_SELINUX_ENABLED: 'false' }).selinux.enabled, false);
  const file = configFile(t, 'selinux:\n  enabled: yes-please\n');
  t.match(errorsOf(() => loadConfig(file, {}))[0], new RegExp(`^${file}:2:12: selinux\\.enabled: must be auto, true or false`));
});

// Issue 21: the config is validated as strictly as the policy.

t.test('a recursive alias is a located error, not a hang', async (t) => {
  const file = configFile(t, 'log: &a {x: *a}\n');
  t.same(errorsOf(() => loadConfig(file, {})), [`${file}:1:13: alias *a refers to a node that contains it; a recursive structure is not allowed`]);
});

t.test('dotted keys, __proto__ and constructor are unknown settings, located, at any level', async (t) => {
  const file = configFile(t, '"log.level": debug\n__proto__: { level: debug }\nconstructor: 1\nlog:\n  constructor: x\n  __proto__: y\n  level: warn\n');
  const errors = errorsOf(() => loadConfig(file, {}));
  t.same(
    errors.map((e) => e.replace(/; known settings: .*$/, '')),
    [
      `${file}:1:1: "log.level": unknown setting`,
      `${file}:2:1: __proto__: unknown setting`,
      `${file}:3:1: constructor: unknown setting`,
      `${file}:5:3: log.constructor: unknown setting`,
      `${file}:6:3: log.__proto__: unknown setting`,
    ],
  );
  t.equal(({} as Record<string, unknown>).level, undefined, 'no prototype polluted');
});

t.test('a section that is not a mapping is a located error, not an internal message', async (t) => {
  const file = configFile(t, 'log: 5\nalerts:\n  syslog: [a]\n');
  t.same(errorsOf(() => loadConfig(file, {})), [`${file}:1:6: log: must be a mapping of settings: level`, `${file}:3:11: alerts.syslog: must be a mapping of settings: target, facility, appName, minSeverity, timeoutMs`]);
  t.equal(loadConfig(configFile(t, 'alerts:\n#  syslog: {}\n'), {}).alerts.syslog.target, '', 'a section with everything commented out is empty');
  // Found by the fuzz suite: convict read a mapping under a setting as settings below it ("did you override its parent?").
  const nested = configFile(t, 'docker:\n  timeoutMs:\n    webhooks: null\n');
  t.same(errorsOf(() => loadConfig(nested, {})), [`${nested}:3:5: docker.timeoutMs: must be a single value, not a mapping`]);
});

t.test('duplicate keys are compared as YAML resolves them; non-UTF-8 is refused', async (t) => {
  const file = configFile(t, 'docker:\n  timeoutMs: 1\n  "timeoutMs": 2\nreconcile: {intervalSeconds: 5}\n');
  t.same(errorsOf(() => loadConfig(file, {})), [`${file}:3:3: duplicate key "timeoutMs"; each key may appear once per mapping`]);
  const dir = t.testdir({ 'latin1.yaml': Buffer.from('log:\n  level: info # caf\xe9\n', 'latin1') });
  t.same(errorsOf(() => loadConfig(`${dir}/latin1.yaml`, {})), [`${dir}/latin1.yaml:0:0: the config is not valid UTF-8`]);
});

t.test('a webhook secretFile open to group or others is refused, located at its key', async (t) => {
  const dir = t.testdir({ 'open.secret': 'whsec_c2VjcmV0', 'private.secret': 'whsec_c2VjcmV0' });
  chmodSync(`${dir}/open.secret`, 0o640);
  chmodSync(`${dir}/private.secret`, 0o600);
  const config = (secret: string) => {
    writeFileSync(`${dir}/${secret}.yaml`, `alerts:\n  webhooks:\n    - url: https://alerts.example/hook\n      secretFile: ${dir}/${secret}\n`);
    return `${dir}/${secret}.yaml`;
  };
  const file = config('open.secret');
  t.same(errorsOf(() => loadConfig(file, {})), [
    `${file}:4:7: alerts.webhooks: [0].secretFile: refused: the file is open to group or others (mode 0640); a signing secret must be readable by its owner only (chmod 600)`,
  ]);
  t.equal(loadConfig(config('private.secret'), {}).alerts.webhooks[0]?.secretFile, `${dir}/private.secret`);
});

t.test('firewall.otherBridges: interface names only, nothing a ruleset could not take', async (t) => {
  t.same(loadConfig(configFile(t, 'firewall:\n  otherBridges: [virbr0, lxcbr0]\n'), {}).firewall.otherBridges, ['virbr0', 'lxcbr0']);
  t.same(loadConfig(configFile(t, ''), {}).firewall.otherBridges, [], 'none by default');
  const errors = errorsOf(() => loadConfig(configFile(t, 'firewall:\n  otherBridges: [virbr0, "br0\\" ; flush ruleset", toolong-interface0]\n'), {}));
  t.match(errors.join('\n'), /firewall\.otherBridges: not interface names: "br0\\" ; flush ruleset", "toolong-interface0"/);
  t.match(errorsOf(() => loadConfig(configFile(t, 'firewall:\n  otherBridges: virbr0\n'), {})).join('\n'), /must be a list of interface names/);
});

t.test('gate.allow: what the gate lets through that no check sees, none by default; an unknown entry names the known ones', async (t) => {
  t.same(loadConfig(configFile(t, '# nothing set\n'), {}).gate.allow, []);
  t.same(loadConfig(configFile(t, 'gate:\n  allow: [builds, plugins]\n'), {}).gate.allow, ['builds', 'plugins']);
  t.match(errorsOf(() => loadConfig(configFile(t, 'gate:\n  allow: [build]\n'), {})).join('\n'), /must be a list of plugins, services, builds/);
});
