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

t.test('selinux.enabled: auto by default; true, false, or the environment', async (t) => {
  t.equal(loadConfig(configFile(t, ''), {}).selinux.enabled, 'auto');
  t.equal(loadConfig(configFile(t, 'selinux:\n  enabled: true\n'), {}).selinux.enabled, true);
  t.equal(loadConfig(configFile(t, 'selinux:\n  enabled: true\n'), { DOCKWARDEN_SELINUX_ENABLED: 'false' }).selinux.enabled, false);
  const file = configFile(t, 'selinux:\n  enabled: yes-please\n');
  t.match(errorsOf(() => loadConfig(file, {}))[0], new RegExp(`^${file}:2:12: selinux\\.enabled: must be auto, true or false`));
});
