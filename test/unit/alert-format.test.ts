import t from 'tap';
import { createHmac } from 'node:crypto';
import { effectiveAction } from '../../src/domain/decision.js';
import { makeAlert, severityAtLeast, uuidv7, wellFormed, type AlertInput } from '../../src/domain/alerts/alert.js';
import { formatLocal, formatRfc5424, octetCounted, SYSLOG_MAX_BYTES, syslogPri, withinSyslogLimit, type SyslogIdentity } from '../../src/domain/alerts/syslog-format.js';
import { parseSyslogTarget } from '../../src/domain/alerts/syslog-target.js';
import { webhookBody } from '../../src/domain/alerts/webhook-payload.js';
import { webhookHeaders, webhookSecretKey, webhookSignature } from '../../src/domain/alerts/webhook-signature.js';
import { OctetCountingSplitter, parse5424 } from '../helpers/syslog-receiver.js';

const CONTEXT = { host: 'host1', mode: 'enforce' as const, policyHash: 'ab'.repeat(32) };
const TIME = new Date('2026-12-01T20:00:00.123Z');
const RANDOM = new Uint8Array(10).fill(0xff);
const IDENTITY: SyslogIdentity = { facility: 'daemon', appName: 'dockwarden', procId: 4242 };

/** What an attacker controls: names, labels and image references that try to close fields and start new ones. */
const HOSTILE = {
  id: 'c0ffee',
  name: 'web"] [evil@1 x="y"]\n<1>1 2026-01-01T00:00:00Z forged - - - - hi\\',
  image: 'img:\ud800tag]\r\nx',
};
const input = (over: Partial<AlertInput> = {}): AlertInput => ({
  check: 'privileged',
  severity: 'high',
  action: 'kill',
  message: 'container runs privileged',
  container: HOSTILE,
  details: { label: 'a"b]\n' },
  ...over,
});

t.test('uuidv7: version and variant bits, time order, the given randomness', async (t) => {
  const id = uuidv7(TIME.getTime(), RANDOM);
  t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(id.slice(0, 13).replace('-', ''), TIME.getTime().toString(16).padStart(12, '0'));
  t.ok(uuidv7(1000, RANDOM) < uuidv7(1001, new Uint8Array(10)), 'later ms sorts later whatever the randomness');
});

t.test('severity order, audit downgrades every action, lone surrogates replaced', async (t) => {
  t.ok(severityAtLeast('critical', 'high'));
  t.ok(severityAtLeast('high', 'high'));
  t.notOk(severityAtLeast('medium', 'high'));
  t.notOk(severityAtLeast('info', 'low'));
  t.equal(effectiveAction('audit', 'kill'), 'alert');
  t.equal(effectiveAction('enforce', 'stop'), 'stop');
  t.equal(wellFormed('a\ud800b\udc00c\ud83d\ude00'), 'a\ufffdb\ufffdc\ud83d\ude00', 'pairs stay, halves go');
});

t.test('the record: what the caller gave plus id, time, host, mode, policy hash', async (t) => {
  const alert = makeAlert(input(), CONTEXT, TIME, RANDOM);
  t.same(
    { ...alert, id: 'x' },
    {
      id: 'x', time: '2026-12-01T20:00:00.123Z', host: 'host1', severity: 'high', check: 'privileged',
      container: { id: 'c0ffee', name: HOSTILE.name, image: 'img:\ufffdtag]\r\nx' },
      action: 'kill', mode: 'enforce', message: 'container runs privileged', details: { label: 'a"b]\n' }, policyHash: CONTEXT.policyHash,
    },
  );
  t.equal(makeAlert({ check: 'daemon.docker-back', severity: 'info', message: 'm' }, CONTEXT, TIME, RANDOM).action, 'none');
});

t.test('RFC 5424: hostile values stay inside their SD-PARAM and cannot forge fields or records', async (t) => {
  const alert = makeAlert(input(), CONTEXT, TIME, RANDOM);
  const record = formatRfc5424(alert, IDENTITY);
  t.notOk(record.includes('\n') || record.includes('\r'), 'one line');
  const parsed = parse5424(record);
  t.equal(parsed.pri, 3 * 8 + 3, 'daemon.err for high');
  t.same([parsed.timestamp, parsed.hostname, parsed.appName, parsed.procId, parsed.msgId], ['2026-12-01T20:00:00.123Z', 'host1', 'dockwarden', '4242', 'privileged']);
  t.same([...parsed.sd.keys()], ['dockwarden@32473'], 'exactly one SD-ELEMENT: the forged [evil@1] stayed a value');
  const sd = parsed.sd.get('dockwarden@32473')!;
  t.equal(sd.name, HOSTILE.name.replace('\n', ' '), 'the name arrives whole, its newline blanked');
  t.equal(sd.image, 'img:\ufffdtag]  x');
  t.same(JSON.parse(sd.details!), { label: 'a"b]\n' }, 'details are JSON inside the value');
  t.same([sd.id, sd.check, sd.severity, sd.action, sd.mode, sd.policy, sd.container], [alert.id, 'privileged', 'high', 'kill', 'enforce', CONTEXT.policyHash, 'c0ffee']);
  t.ok(parsed.bom, 'MSG starts with the BOM');
  t.equal(parsed.msg, 'container runs privileged');
});

t.test('RFC 5424: header fields are PRINTUSASCII, a hostile message stays on one line', async (t) => {
  const alert = makeAlert(input({ message: 'two\nlines \ud800', container: null, details: {} }), { ...CONTEXT, host: 'bad host\n' }, TIME, RANDOM);
  const parsed = parse5424(formatRfc5424(alert, { ...IDENTITY, facility: 'local7', appName: 'dw' }));
  t.equal(parsed.hostname, 'bad_host_');
  t.equal(parsed.pri, 23 * 8 + 3);
  t.equal(parsed.msg, 'two lines \ufffd');
  t.notOk('name' in parsed.sd.get('dockwarden@32473')!, 'no container, no container params');
  t.equal(syslogPri('kern', 'critical'), 2);
  t.equal(syslogPri('daemon', 'info'), 30);
});

t.test('records stay within 8 KiB without cutting a field: details give way first, then long names', async (t) => {
  const small = makeAlert(input(), CONTEXT, TIME, RANDOM);
  t.same(withinSyslogLimit(small, (a) => formatRfc5424(a, IDENTITY)), formatRfc5424(small, IDENTITY), 'a small record is untouched');
  // within every alert's own bounds (README "Alerts"), beyond what one syslog record takes
  const bigDetails = makeAlert(input({ details: { mounts: Array.from({ length: 12 }, (_, i) => `/srv/data/${i}/${'d'.repeat(990)}`) } }), CONTEXT, TIME, RANDOM);
  const record = withinSyslogLimit(bigDetails, (a) => formatRfc5424(a, IDENTITY));
  t.ok(record.length <= SYSLOG_MAX_BYTES, `${record.length} bytes`);
  const sd = parse5424(record).sd.get('dockwarden@32473')!;
  t.same(JSON.parse(sd.details!), { truncated: true, detailsBytes: Buffer.byteLength(JSON.stringify(bigDetails.details)) });
  t.equal(sd.name, HOSTILE.name.replace('\n', ' '), 'the rest is whole');
  const bigName = makeAlert(input({ container: { id: 'c1', name: 'ü'.repeat(5000), image: 'i'.repeat(9000) } }), CONTEXT, TIME, RANDOM);
  for (const format of [formatRfc5424, formatLocal]) {
    const out = withinSyslogLimit(bigName, (a) => format(a, IDENTITY));
    t.ok(out.length <= SYSLOG_MAX_BYTES && !out.toString('utf8').includes('\ufffd'), `${format.name}: ${out.length} bytes, valid UTF-8`);
  }
  t.equal(parse5424(withinSyslogLimit(bigName, (a) => formatRfc5424(a, IDENTITY))).sd.get('dockwarden@32473')!.name, 'ü'.repeat(256));
});

t.test('octet counting frames by bytes, not characters', async (t) => {
  const a = formatRfc5424(makeAlert(input(), CONTEXT, TIME, RANDOM), IDENTITY);
  const b = Buffer.from('ü ]\n', 'utf8');
  const stream = Buffer.concat([octetCounted(a), octetCounted(b)]);
  const splitter = new OctetCountingSplitter();
  const out = [...splitter.push(stream.subarray(0, 7)), ...splitter.push(stream.subarray(7))];
  t.same(out.map((r) => r.toString('hex')), [a.toString('hex'), b.toString('hex')]);
  t.match(octetCounted(b).toString('utf8'), /^5 ü/);
});

t.test('the local socket gets <PRI>TAG[PID]: MSG and the record as one line of JSON', async (t) => {
  const alert = makeAlert(input(), CONTEXT, TIME, RANDOM);
  const line = formatLocal(alert, IDENTITY).toString('utf8');
  const m = /^<27>dockwarden\[4242\]: container runs privileged (\{.*\})$/.exec(line);
  t.ok(m, line);
  t.notOk(line.includes('\n'), 'one line');
  t.same(JSON.parse(m![1]!), alert);
});

t.test('syslog targets', async (t) => {
  t.same(parseSyslogTarget('udp://127.0.0.1:514'), { transport: 'udp', host: '127.0.0.1', port: 514 });
  t.same(parseSyslogTarget('tcp://[::1]:6514'), { transport: 'tcp', host: '::1', port: 6514 });
  t.same(parseSyslogTarget('tcp://logs.example.com:601'), { transport: 'tcp', host: 'logs.example.com', port: 601 });
  t.same(parseSyslogTarget('unix:/dev/log'), { transport: 'unix', path: '/dev/log' });
  for (const bad of ['udp://h', 'udp://h:0', 'udp://h:65536', 'http://h:1', 'unix:dev/log', 'tcp://a b:1']) t.ok('error' in parseSyslogTarget(bad), bad);
});

t.test('Standard Webhooks: the specification example signs as published', async (t) => {
  // The example of the Standard Webhooks specification and its reference libraries.
  const key = webhookSecretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  t.equal(webhookSignature(key, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'), 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
});

t.test('Standard Webhooks: a raw secret is used as its bytes; headers carry id, timestamp and signature', async (t) => {
  const raw = webhookSecretKey('not-prefixed secret');
  t.equal(raw.toString('utf8'), 'not-prefixed secret');
  const headers = webhookHeaders(raw, 'id1', 1700000000, '{}');
  const expected = createHmac('sha256', 'not-prefixed secret').update('id1.1700000000.{}').digest('base64');
  t.same(headers, { 'webhook-id': 'id1', 'webhook-timestamp': '1700000000', 'webhook-signature': `v1,${expected}` });
});

t.test('payload formats are JSON whatever the names hold; Slack text cannot link or mention', async (t) => {
  const alert = makeAlert(input({ container: { id: 'c0ffee', name: '<!channel> <http://evil|click> & "x"', image: HOSTILE.image } }), CONTEXT, TIME, RANDOM);
  t.same(JSON.parse(webhookBody(alert, 'standard')), { type: 'dockwarden.alert', timestamp: alert.time, data: JSON.parse(JSON.stringify(alert)) });
  const slack = JSON.parse(webhookBody(alert, 'slack')) as { text: string };
  t.notOk(/[<>]/.test(slack.text), slack.text);
  t.match(slack.text, /&lt;!channel&gt; &lt;http:\/\/evil\|click&gt; &amp; "x"/);
  const [am] = JSON.parse(webhookBody(alert, 'alertmanager')) as Array<{ labels: Record<string, string>; annotations: Record<string, string>; startsAt: string }>;
  t.equal(am!.labels.alertname, 'dockwarden_privileged');
  t.equal(am!.labels.alert_id, alert.id);
  t.equal(am!.labels.container, alert.container!.name);
  t.equal(am!.startsAt, alert.time);
  t.equal(JSON.parse(webhookBody(makeAlert(input({ check: 'daemon.docker-unreachable' }), CONTEXT, TIME, RANDOM), 'alertmanager'))[0].labels.alertname, 'dockwarden_daemon_docker_unreachable');
});
