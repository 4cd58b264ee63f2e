import t, { type Test } from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { actionEnforcer, type ActionOutcome } from '../../src/app/action-enforcer.js';
import { judgeViolations, type Violation } from '../../src/domain/decision.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { decisionOf } from '../helpers/decision.js';
import { makeFacts } from '../helpers/facts.js';

/**
 * A stand-in for dockerd on a real unix socket, for the one thing a real dockerd will not do on
 * demand: fail a kill. It records every request and answers `status(request)` (204 by default).
 * The Docker client under test is the real one (the daemon's EngineClient over the socket).
 */
async function fakeDockerd(t: Test, status: (path: string, attempt: number) => number = () => 204) {
  const dir = mkdtempSync(join(tmpdir(), 'dw-action-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const requests: Array<{ method: string; url: string; path: string; body: string }> = [];
  const attempts = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      const path = (req.url ?? '').replace(/^\/v[\d.]+/, '').split('?')[0]!;
      requests.push({ method: req.method ?? '', url: req.url ?? '', path, body });
      const n = (attempts.get(path) ?? 0) + 1;
      attempts.set(path, n);
      const code = status(path, n);
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(code >= 400 ? JSON.stringify({ message: 'injected failure' }) : code === 200 ? '{"Warnings":[]}' : '');
    });
  });
  const socketPath = join(dir, 'docker.sock');
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { engine: connectEngine({ socketPath, timeoutMs: 2_000 }), requests };
}

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  return { log, lines };
}

function policy(mode: 'enforce' | 'audit'): Policy {
  const result = parsePolicy(`version: 1\nmode: ${mode}\n`, 'policy.yaml');
  if (!result.ok) throw new Error('bad policy');
  return result.policy;
}

const violation = (action: Violation['action'], check: Violation['check'] = 'privileged'): Violation => ({ check, severity: 'high', action, message: `${check} found`, details: {} });
const facts = makeFacts();
const tracked = (...violations: Violation[]) => ({ facts, decision: decisionOf(facts, { violations }) });
const trackedInAudit = (...violations: Violation[]) => ({ facts, decision: decisionOf(facts, { violations, mode: 'audit' }) });
const UPDATE = `/containers/${facts.id}/update`;
const KILL = `/containers/${facts.id}/kill`;
const WAIT = `/containers/${facts.id}/wait`;
const DELAYS = [10, 10];

t.test('the strongest action wins; alerts alone call for none; audit mode does none and says what enforce would', async (t) => {
  const action = (mode: 'enforce' | 'audit', ...vs: Violation[]) => {
    const { action, actionInEnforce } = judgeViolations(mode, vs);
    return [action, actionInEnforce];
  };
  t.same(action('enforce', violation('alert'), violation('kill'), violation('stop')), ['kill', 'kill']);
  t.same(action('enforce', violation('alert'), violation('stop')), ['stop', 'stop']);
  t.same(action('enforce', violation('alert')), [null, null]);
  t.same(action('enforce'), [null, null]);
  t.same(action('audit', violation('alert'), violation('kill')), [null, 'kill']);
  t.same(judgeViolations('audit', [violation('kill')]).violations.map((v) => [v.action, v.effective]), [['kill', 'alert']]);
});

t.test('kill: the kill and the restart policy no, then one log line with the reasons', async (t) => {
  const { engine, requests } = await fakeDockerd(t, (path) => (path === UPDATE ? 200 : 204));
  const { log, lines } = capture();
  await actionEnforcer(engine, log, { retryDelaysMs: DELAYS }).apply(tracked(violation('alert', 'root-user'), violation('kill')), policy('enforce'));
  t.same(requests.map((r) => `${r.method} ${r.path}`).sort(), [`POST ${KILL}`, `POST ${UPDATE}`]);
  t.same(JSON.parse(requests.find((r) => r.path === UPDATE)!.body), { RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
  const killed = lines.filter((l) => l.msg === 'container killed');
  t.equal(killed.length, 1);
  t.same(killed[0]!.violations, [{ check: 'privileged', severity: 'high', message: 'privileged found' }], 'only the violations that asked for it');
});

t.test("stop is SIGTERM, a wait bounded by the policy's grace, then SIGKILL; never the stop endpoint", async (t) => {
  // The fake answers the wait with an error: whether the container exited cannot be told, so it is killed.
  const { engine, requests } = await fakeDockerd(t, (path) => (path === UPDATE ? 200 : path === WAIT ? 500 : 204));
  await actionEnforcer(engine, capture().log, { retryDelaysMs: DELAYS }).apply(tracked(violation('stop')), policy('enforce'));
  t.same(
    requests.filter((r) => r.path !== UPDATE).map((r) => r.url.replace(/^\/v[\d.]+/, '')),
    [`${KILL}?signal=SIGTERM`, `${WAIT}?condition=not-running`, `${KILL}?signal=SIGKILL`],
  );
});

t.test('nothing is done in audit mode, for alerts, or for a container that is not running', async (t) => {
  const { engine, requests } = await fakeDockerd(t);
  const { log, lines } = capture();
  const enforcer = actionEnforcer(engine, log, { retryDelaysMs: DELAYS });
  await enforcer.apply(trackedInAudit(violation('kill')), policy('audit'));
  await enforcer.apply(trackedInAudit(violation('kill')), policy('audit'));
  await enforcer.apply(tracked(violation('alert')), policy('enforce'));
  const created = makeFacts({ state: { running: false, status: 'created', pid: 0, startedAt: '' } });
  await enforcer.apply({ facts: created, decision: decisionOf(created, { violations: [violation('kill')] }) }, policy('enforce'));
  t.same(requests, []);
  t.equal(lines.filter((l) => l.msg === 'audit mode: container left running').length, 1, 'audit logged once, not on every reconcile');
});

t.test('a failing kill is retried, and succeeds on the third attempt', async (t) => {
  const { engine, requests } = await fakeDockerd(t, (path, n) => (path === KILL && n < 3 ? 500 : path === UPDATE ? 200 : 204));
  const { log, lines } = capture();
  const outcomes: ActionOutcome[] = [];
  await actionEnforcer(engine, log, { retryDelaysMs: DELAYS, onOutcome: (o) => outcomes.push(o) }).apply(tracked(violation('kill')), policy('enforce'));
  t.equal(requests.filter((r) => r.path === KILL).length, 3);
  t.same(outcomes.map((o) => [o.action, o.error]), [['kill', null]]);
  t.ok(lines.some((l) => l.msg === 'container killed'));
});

t.test('a kill that keeps failing is reported, never dropped silently', async (t) => {
  const { engine, requests } = await fakeDockerd(t, () => 500);
  const { log, lines } = capture();
  const outcomes: ActionOutcome[] = [];
  await actionEnforcer(engine, log, { retryDelaysMs: DELAYS, onOutcome: (o) => outcomes.push(o) }).apply(tracked(violation('kill')), policy('enforce'));
  t.equal(requests.filter((r) => r.path === KILL).length, 3, 'three attempts');
  t.ok(lines.some((l) => l.msg === 'cannot set the restart policy to no'), 'the restart policy failure is logged, and the kill still tried');
  t.equal(outcomes.length, 1);
  t.equal(outcomes[0]!.action, 'kill');
  t.match(String(outcomes[0]!.error), /injected failure/);
  t.ok(lines.some((l) => l.msg === 'kill failed; retried at the next sync' && l.level === 50));
});

t.test('a container that ended on its own meanwhile (409, 404) is not a failure', async (t) => {
  const { engine } = await fakeDockerd(t, (path) => (path === KILL ? 409 : 200));
  const outcomes: ActionOutcome[] = [];
  const { log, lines } = capture();
  await actionEnforcer(engine, log, { retryDelaysMs: DELAYS, onOutcome: (o) => outcomes.push(o) }).apply(tracked(violation('kill')), policy('enforce'));
  t.same(outcomes.map((o) => o.error), [null]);
  t.ok(lines.some((l) => l.msg === 'container killed'));
});
