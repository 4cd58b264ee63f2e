import t, { type Test } from 'tap';
import { ConfigInvalid, loadConfig } from '../../src/app/config.js';

function configFile(t: Test, text: string): string {
  return `${t.testdir({ 'config.yaml': text })}/config.yaml`;
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
