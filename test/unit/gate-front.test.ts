import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DockerEngine } from '../../src/adapters/docker/engine.js';
import type { Alerter } from '../../src/app/alerts/alerter.js';
import { startGate } from '../../src/app/gate/gate-setup.js';
import { createLogger } from '../../src/app/logger.js';
import { parsePolicy } from '../../src/domain/policy/load.js';

const parsed = parsePolicy('version: 1\n', 'policy.yaml');
if (!parsed.ok) throw new Error('the test policy is invalid');
const POLICY = parsed.policy;

/**
 * The gate's front (src/app/gate/gate-worker.ts) on a real socket, started as the daemon starts it.
 * Nothing here reaches the engine: a request let through unread, and a create without a body (refused unread).
 */
async function gate(t: { teardown(fn: () => unknown): void; fail(message: string): void }, socket: string) {
  const decided: Array<{ route: string | null; allow: boolean }> = [];
  const served = await startGate(
    { enabled: true, socket, timeoutMs: 5_000, allow: [] },
    {} as DockerEngine, // never asked: nothing sent here needs the engine
    () => POLICY,
    undefined,
    { raise: () => {} } as unknown as Alerter,
    createLogger('fatal', { write: () => {} }),
    {},
    { gateDecided: (route, allow) => decided.push({ route, allow }) },
    (error) => t.fail(`the front was lost: ${error.message}`),
  );
  t.teardown(() => served?.close());
  return { served: served!, decided };
}

/** A client in a process of its own: it waits for `go`, asks, and writes the answers it got to `answers`. */
const CLIENT = `
const { request } = require('node:http');
const { existsSync, writeFileSync } = require('node:fs');
const [socket, go, answers] = process.argv.slice(1);
const ask = (method, uri, body) => new Promise((resolve, reject) => {
  const payload = JSON.stringify({ RequestMethod: method, RequestUri: uri, ...(body ? { RequestBody: Buffer.from(JSON.stringify(body)).toString('base64') } : {}) });
  const req = request({ socketPath: socket, method: 'POST', path: '/AuthZPlugin.AuthZReq', headers: { 'content-type': 'application/json' } }, (res) => {
    let text = '';
    res.on('data', (c) => (text += c));
    res.on('end', () => resolve(JSON.parse(text)));
  });
  req.on('error', reject);
  req.end(payload);
});
const wait = () => (existsSync(go) ? Promise.resolve() : new Promise((r) => setTimeout(r, 10)).then(wait));
wait().then(async () => {
  const list = await ask('GET', '/v1.41/containers/json');
  writeFileSync(answers, JSON.stringify({ list }));
  const create = await ask('POST', '/v1.41/containers/create');
  writeFileSync(answers, JSON.stringify({ list, create }));
});
`;

t.test('a request no check judges is answered while the daemon\'s thread is busy; a create waits for it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-gate-front-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'gate.sock');
  const { decided } = await gate(t, socket);
  const go = join(dir, 'go');
  const answers = join(dir, 'answers');
  const client = spawn(process.execPath, ['-e', CLIENT, socket, go, answers], { stdio: 'inherit' });
  const exited = new Promise((resolve) => client.once('exit', resolve));
  // This thread is the daemon's: busy (here, blocked) until the client has its first answer, or 30 s.
  writeFileSync(go, '');
  const blockedUntil = Date.now() + 30_000;
  while (!existsSync(answers) && Date.now() < blockedUntil);
  t.ok(existsSync(answers), 'the let-through request was answered while this thread could not run');
  t.same(JSON.parse(readFileSync(answers, 'utf8')), { list: { Allow: true } }, 'and only it: the create waits for this thread');
  await exited;
  const { create } = JSON.parse(readFileSync(answers, 'utf8')) as { create: { Allow: boolean; Msg: string } };
  t.equal(create.Allow, false, 'the create was judged here once this thread was free: refused');
  t.match(create.Msg, /forwarded no body/);
  t.same(decided, [{ route: 'other', allow: true }, { route: 'create', allow: false }], 'both decisions timed, by route and answer');
});

t.test('a socket it cannot listen on: the gate does not start, and says why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-gate-front-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'file'), '');
  await t.rejects(gate(t, join(dir, 'file', 'gate.sock')), /cannot serve the gate: EEXIST/);
});
