import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/app/logger.js';
import { logFormat, prettyDestination, prettyLine } from '../../src/cli/pretty-log.js';

const judged = {
  level: 30,
  time: '2026-12-01T20:00:00.123Z',
  pid: 7,
  container: { id: 'c0ffee1234567890', name: 'web', image: 'nginx:1.27', running: true },
  ports: [{ port: '8080/tcp', rule: 'web', allow: ['198.51.100.0/24', 'office'] }, { port: '9090/tcp', rule: null, allow: [] }],
  violations: [{ check: 'privileged', action: 'kill', message: 'container runs privileged' }],
  msg: 'container judged',
};

t.test('one readable line per record: time, level, what, container, decision', async (t) => {
  t.equal(prettyLine(judged), '20:00:00.123 INFO  container judged  web (c0ffee123456)  violations: privileged→kill  ports: 8080/tcp from 198.51.100.0/24 office, 9090/tcp from nobody');
  t.equal(
    prettyLine({ level: 40, time: '2026-12-01T20:00:01.000Z', pid: 7, alert: { check: 'daemon.docker-unreachable', severity: 'high', action: 'none', message: 'Docker unreachable' }, msg: 'alert' }),
    '20:00:01.000 WARN  alert  alert daemon.docker-unreachable high none: Docker unreachable',
  );
  t.equal(prettyLine({ level: 50, time: '2026-12-01T20:00:02.000Z', err: { message: 'boom', stack: '...' }, reason: 'periodic', msg: 'reconcile failed' }), '20:00:02.000 ERROR reconcile failed  error: boom  reason=periodic');
});

t.test('a hostile name cannot drive the terminal or start a line of its own', async (t) => {
  const line = prettyLine({ ...judged, container: { id: 'c0ffee1234567890', name: 'x\u001b[2J\nFAKE 00:00:00.000 INFO all clear' }, violations: [], ports: [] });
  t.notMatch(line, /[\u0000-\u001f]/, 'no control character left');
  t.match(line, /x\\x1b\[2J\\x0aFAKE/, 'shown escaped');
});

t.test('the daemon logger writes pretty lines through prettyDestination', async (t) => {
  let out = '';
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((out += chunk.toString()), done()) });
  const log = createLogger('info', prettyDestination(sink));
  log.info({ container: { id: 'abcdef0123456789', name: 'db' } }, 'container gone');
  t.match(out, /^\d\d:\d\d:\d\d\.\d{3} INFO  container gone  db \(abcdef012345\)\n$/);
});

t.test('--log-format: as given, else pretty on a terminal only', async (t) => {
  t.equal(logFormat(undefined, true), 'pretty');
  t.equal(logFormat(undefined, false), 'json', 'journald and pipes get JSON');
  t.equal(logFormat('json', true), 'json');
  t.equal(logFormat('pretty', false), 'pretty');
  t.throws(() => logFormat('xml', true), /--log-format must be json or pretty/);
});
