import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { serveAuthz } from '../../src/adapters/gate/authz-server.js';
import { judgeRequest } from '../../src/app/gate/judge-request.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { dockwarden } from '../helpers/cli.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { GATE_DOCKERD_PIDFILE, startGateDockerd, type GateDockerd } from '../helpers/gate-dockerd.js';

/**
 * `dockwarden gate install | uninstall` against a real dockerd that reads a daemon.json: install
 * keeps the admin's keys and takes effect on dockerd's reload; it refuses while the gate does not
 * answer (dockerd would exit); uninstall rescues a host whose gate is down, with no Docker API call.
 */

const dir = mkdtempSync(join(tmpdir(), 'dw-gate-install-'));
const gateSocket = join(dir, 'gate.sock');
const daemonJson = join(dir, 'daemon.json');
const configFile = join(dir, 'config.yaml');
const pluginName = `dw-gate-install-${process.pid}`;
const ADMIN_KEYS = { 'log-level': 'info', labels: ['keep=me'] };
const policyResult = parsePolicy('version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n', 'install-test.yaml');
if (!policyResult.ok) throw new Error('test policy invalid');
const policy: Policy = policyResult.policy;

let gated: GateDockerd;
let server: Server | null = null;

const serve = () =>
  serveAuthz({
    listen: { path: gateSocket },
    timeoutMs: 5_000,
    decide: (req) => judgeRequest(req, { engine: connectEngine({ socketPath: '/run/dw-gate/docker.sock', timeoutMs: 10_000 }), policy: () => policy, allow: [] }),
    onFailure: () => {},
  });
const gate = (action: string) =>
  dockwarden(['gate', action, '--config', configFile, '--daemon-json', daemonJson, '--docker-pidfile', GATE_DOCKERD_PIDFILE, '--plugin-name', pluginName]);
const forbidden = () => gated.docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], HostConfig: { CapAdd: ['SYS_ADMIN'] } });

/** dockerd re-reads its configuration asynchronously after SIGHUP: poll, bounded. */
async function eventually(t: Test, what: string, test: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await test())) {
    if (Date.now() > deadline) return void t.fail(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.pass(what);
}

t.before(async () => {
  writeFileSync(daemonJson, JSON.stringify(ADMIN_KEYS));
  writeFileSync(configFile, `gate:\n  enabled: true\n  socket: ${gateSocket}\n`);
  gated = await startGateDockerd(gateSocket, { daemonJson });
});

t.teardown(async () => {
  server?.close();
  await gated.stop();
});

t.test('install refuses while the gate does not answer, and leaves daemon.json alone', async (t) => {
  const result = await gate('install');
  t.equal(result.code, 2);
  t.match(result.stderr, /the gate does not answer on .*gate\.sock/);
  t.same(JSON.parse(readFileSync(daemonJson, 'utf8')), ADMIN_KEYS);
});

t.test('install keeps every other key, and dockerd asks the gate after its reload', async (t) => {
  server = await serve();
  const result = await gate('install');
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(readFileSync(daemonJson, 'utf8')), { ...ADMIN_KEYS, 'authorization-plugins': [pluginName] });
  await eventually(t, 'a forbidden container is refused', async () => (await forbidden().then((c) => c.remove().then(() => null), (e: { statusCode?: number }) => e.statusCode)) === 403);
  t.equal((await gate('install')).code, 0, 'again: nothing to change');
  t.same(JSON.parse(readFileSync(daemonJson, 'utf8'))['authorization-plugins'], [pluginName], 'listed once');
});

t.test('uninstall rescues a host whose gate is down', async (t) => {
  server?.close();
  server = null;
  const result = await gate('uninstall');
  t.equal(result.code, 0, result.stderr);
  t.same(JSON.parse(readFileSync(daemonJson, 'utf8')), ADMIN_KEYS, 'back to the admin keys alone');
  await eventually(t, 'Docker answers again without the gate', async () => {
    const listed = await Promise.race([gated.docker.listContainers().then(() => true, () => false), new Promise<false>((r) => setTimeout(() => r(false), 2_000))]);
    return listed;
  });
});

t.test('a daemon.json dockerd could not read is refused, not rewritten', async (t) => {
  writeFileSync(daemonJson, '{"log-level": "info",');
  const result = await gate('uninstall');
  t.equal(result.code, 2);
  t.match(result.stderr, /not valid JSON/);
  t.equal(readFileSync(daemonJson, 'utf8'), '{"log-level": "info",');
  writeFileSync(daemonJson, JSON.stringify(ADMIN_KEYS));
});
