import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { serveAuthz } from '../../src/adapters/gate/authz-server.js';
import { judgeRequest, type GateVerdict } from '../../src/app/gate/judge-request.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import type { GateAllowance } from '../../src/app/config.js';
import { TEST_IMAGE } from '../helpers/docker.js';
import { startGateDockerd, type GateDockerd } from '../helpers/gate-dockerd.js';

/**
 * The authorization gate against a real dockerd started with `--authorization-plugin`: forbidden
 * containers are refused before they exist (403, the check named, no container left), what the gate
 * cannot judge is refused, and plain containers run. The gate runs in this process.
 */

const LABEL = 'dw-gate-test';

const policyText = (mode: 'enforce' | 'audit', socket: string) => `version: 1
mode: ${mode}
containers:
  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN], action: kill }
  privileged: { action: kill }
  host-namespaces: { namespaces: [pid], action: kill }
  docker-socket: { action: kill, paths: [${socket}] }
  sensitive-mounts: { paths: [/etc], action: stop }
  privileged-exec: { action: kill }
  devices: { action: alert }
`;

function policyOf(text: string): Policy {
  const result = parsePolicy(text, 'gate-test.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

let gated: GateDockerd;
let server: Server;
let policy: Policy;
const pluginSocket = join(mkdtempSync(join(tmpdir(), 'dw-gate-')), 'gate.sock');
const verdicts: GateVerdict[] = [];
/** What `gate.allow` lets through; a test may change it for its own length. */
let allowed: GateAllowance[] = [];

async function startGate(): Promise<Server> {
  const engine = connectEngine({ socketPath: '/run/dw-gate/docker.sock', timeoutMs: 10_000 });
  return serveAuthz({
    listen: { path: pluginSocket },
    timeoutMs: 5_000,
    decide: async (req) => {
      const verdict = await judgeRequest(req, { engine, policy: () => policy, allow: allowed });
      if (verdict.route !== 'other') verdicts.push(verdict);
      return verdict;
    },
    onFailure: (failure) => t.comment(`gate failure: ${failure.reason} ${String(failure.error ?? '')}`),
  });
}

t.before(async () => {
  policy = policyOf(policyText('enforce', '/run/dw-gate/docker.sock'));
  server = await startGate();
  gated = await startGateDockerd(pluginSocket);
});

t.teardown(async () => {
  const left = await gated.docker.listContainers({ all: true, filters: { label: [LABEL] } }).catch(() => []);
  await Promise.all(left.map((c) => gated.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  await gated.stop();
  server.close();
});

const SLEEPER = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'];

async function create(hostConfig: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return gated.docker.createContainer({ Image: TEST_IMAGE, Cmd: SLEEPER, Labels: { [LABEL]: '1' }, HostConfig: hostConfig, ...extra });
}

async function containersLeft(): Promise<number> {
  return (await gated.docker.listContainers({ all: true, filters: { label: [LABEL] } })).length;
}

/** The rejection of a refused request: 403 and dockerd's wording around our message. */
async function refused(t: Test, attempt: Promise<unknown>, check: RegExp): Promise<void> {
  const error = (await attempt.then(() => null, (e: unknown) => e)) as { statusCode?: number; message?: string } | null;
  t.ok(error, 'refused');
  t.equal(error?.statusCode, 403);
  t.match(error?.message ?? '', new RegExp(`authorization denied by plugin ${gated.pluginName}: dockwarden`));
  t.match(error?.message ?? '', check);
}

/** A raw API request to the gate dockerd (bodies no client library would send). */
function raw(method: string, path: string, body: Buffer | null, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: gated.socket, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (body !== null) {
      if (!('transfer-encoding' in headers)) req.setHeader('content-length', body.length);
      req.write(body);
    }
    req.end();
  });
}

t.test('a plain container is created, started and judged clean', async (t) => {
  const container = await create({});
  await container.start();
  t.equal((await container.inspect()).State.Running, true);
  t.same(verdicts.at(-1)?.blocking, [], 'the start was judged, with nothing against it');
  await container.remove({ force: true });
});

t.test('forbidden containers are refused before they exist', async (t) => {
  const before = await containersLeft();
  await refused(t, create({ CapAdd: ['SYS_ADMIN'] }), /capabilities \(holds forbidden capabilities: SYS_ADMIN\)/);
  await refused(t, create({ Privileged: true, Runtime: 'dw-host-caps' }), /privileged/);
  await refused(t, create({ PidMode: 'host' }), /host-namespaces/);
  await refused(t, create({ Binds: ['/run/dw-gate/docker.sock:/var/run/docker.sock'] }), /docker-socket/);
  await refused(t, create({ Binds: ['/etc:/host-etc:ro'] }), /sensitive-mounts/);
  await refused(t, create({ Mounts: [{ Type: 'bind', Source: '/etc', Target: '/x' }] }), /sensitive-mounts/);
  // `CapAdd` is a string-or-list in dockerd (strslice): a bare string is SYS_ADMIN too.
  await refused(t, create({ CapAdd: 'sys_admin' }), /SYS_ADMIN/);
  t.equal(await containersLeft(), before, 'no container was created');
});

t.test('the docker CLI shows the refusal', async (t) => {
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
    execFile('docker', ['-H', `unix://${gated.socket}`, 'run', '--rm', '--label', `${LABEL}=1`, '--cap-add', 'SYS_ADMIN', TEST_IMAGE, 'true'], (error, _out, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stderr }),
    ),
  );
  t.equal(result.code, 125);
  t.match(result.stderr, /authorization denied by plugin .*: dockwarden policy [0-9a-f]{12} refuses this create: capabilities/);
});

t.test('keys are read as dockerd reads them: case-insensitively, the last one winning', async (t) => {
  const cases: Array<[string, RegExp, (inspect: { HostConfig: Record<string, unknown> }) => boolean]> = [
    ['{"image":"IMG","hostconfig":{"privileged":true}}', /privileged/, (i) => i.HostConfig.Privileged === true],
    ['{"Image":"IMG","HostConfig":{"privileged":true,"Privileged":false,"privileged":true}}', /privileged/, (i) => i.HostConfig.Privileged === true],
    ['{"Image":"IMG","HostConfig":{"capadd":["SYS_ADMIN"]}}', /capabilities/, (i) => JSON.stringify(i.HostConfig.CapAdd) === '["SYS_ADMIN"]'],
    ['{"Image":"IMG","HostConfig":{"PidMode":"private","PidMode":"host"}}', /host-namespaces/, (i) => i.HostConfig.PidMode === 'host'],
    // LONG S (U+017F) folds to s in Go's encoding/json: this is `Binds`
    ['{"Image":"IMG","HostConfig":{"Bind\\u017f":["/etc:/x"]}}', /sensitive-mounts/, (i) => JSON.stringify(i.HostConfig.Binds) === '["/etc:/x"]'],
  ];
  const bodyOf = (body: string) => Buffer.from(body.replace('IMG', TEST_IMAGE).replace(/"image"/i, `"Labels":{"${LABEL}":"1"},$&`));
  for (const [body, check] of cases) {
    const res = await raw('POST', '/v1.41/containers/create', bodyOf(body));
    t.equal(res.status, 403, body);
    t.match(res.text, check);
  }
  t.equal(await containersLeft(), 0);
  // The control: with nothing forbidden, dockerd makes of each body exactly what the gate refused.
  policy = policyOf('version: 1\n');
  t.teardown(() => void (policy = policyOf(policyText('enforce', '/run/dw-gate/docker.sock'))));
  for (const [body, , means] of cases) {
    const res = await raw('POST', '/v1.41/containers/create', bodyOf(body));
    t.equal(res.status, 201, body);
    const id = (JSON.parse(res.text) as { Id: string }).Id;
    t.ok(means((await gated.docker.getContainer(id).inspect()) as unknown as { HostConfig: Record<string, unknown> }), `dockerd read ${body} as the gate did`);
    await gated.docker.getContainer(id).remove({ force: true });
  }
});

t.test('what the gate is not shown is refused: oversized, chunked, empty and legacy start bodies', async (t) => {
  // dockerd 20.10 forwards no body of 1 MiB or more: a 2 MiB label must not pass unjudged.
  const big = JSON.stringify({ Image: TEST_IMAGE, Labels: { [LABEL]: '1', pad: 'x'.repeat(2 * 1024 * 1024) }, HostConfig: { CapAdd: ['SYS_ADMIN'] } });
  const oversized = await raw('POST', '/v1.41/containers/create', Buffer.from(big));
  t.equal(oversized.status, 403);
  t.match(oversized.text, /forwarded no body/);
  const chunked = await raw('POST', '/v1.41/containers/create', Buffer.from(JSON.stringify({ Image: TEST_IMAGE, HostConfig: { Privileged: true } })), { 'transfer-encoding': 'chunked' });
  t.equal(chunked.status, 403);
  const noType = await raw('POST', '/v1.41/containers/create', Buffer.from(JSON.stringify({ Image: TEST_IMAGE })), { 'content-type': 'text/plain' });
  t.equal(noType.status, 403, 'a body not declared as JSON is not forwarded, and is refused');
  t.equal(await containersLeft(), 0);

  const plain = await create({});
  const legacy = await raw('POST', `/v1.23/containers/${plain.id}/start`, Buffer.from(JSON.stringify({ Privileged: true })));
  t.equal(legacy.status, 403);
  t.match(legacy.text, /before 1\.24/);
  t.equal((await plain.inspect()).State.Running, false, 'not started');
  const spelled = await raw('POST', `//v1.41//containers/${plain.id}/./start/`, null);
  t.not(spelled.status, 500, 'an odd spelling of start is routed and judged, not an error');
  await plain.remove({ force: true });
});

t.test('exec: --privileged is refused, a plain exec runs', async (t) => {
  const container = await create({ Runtime: 'dw-host-caps' });
  await container.start();
  await refused(t, container.exec({ Cmd: ['true'], Privileged: true }), /privileged-exec/);
  const exec = await container.exec({ Cmd: ['true'] });
  t.ok(exec.id, 'a plain exec is created');
  await container.remove({ force: true });
});

t.test('a container made before the gate is judged when it starts', async (t) => {
  // Made under an audit policy (allowed), then started under enforce.
  policy = policyOf(policyText('audit', '/run/dw-gate/docker.sock'));
  const container = await create({ CapAdd: ['SYS_ADMIN'] });
  t.ok(verdicts.at(-1)!.allow && verdicts.at(-1)!.blocking.length === 1, 'audit mode: allowed, and the refusal it would have been is reported');
  policy = policyOf(policyText('enforce', '/run/dw-gate/docker.sock'));
  await refused(t, container.start(), /capabilities/);
  t.equal((await container.inspect()).State.Running, false);
  await container.remove({ force: true });
});

t.test('services and managed plugins are refused unless allowed', async (t) => {
  const services = await raw('POST', '/v1.41/services/create', Buffer.from('{}'));
  t.equal(services.status, 403);
  t.match(services.text, /swarm services/);
  const plugins = await raw('POST', '/v1.41/plugins/pull?remote=x', Buffer.from('[]'));
  t.equal(plugins.status, 403);
});

t.test('image builds are refused unless allowed: their steps run outside the checks, on the host network if asked', async (t) => {
  // An interface of this host's network namespace (the gate dockerd runs in it), not one a container
  // has too: a step on the host network sees it, a step in a container's own namespace does not.
  const hostInterface = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).find((name) => !['', 'lo', 'eth0'].includes(name))!;
  const tag = `dw-gate-build-${process.pid}`;
  const build = (network: string) =>
    new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = execFile('docker', ['-H', `unix://${gated.socket}`, 'build', '--no-cache', '--network', network, '-t', tag, '-'], { env: { ...process.env, DOCKER_BUILDKIT: '0' } }, (error, _out, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? -1) : 0, stderr }),
      );
      child.stdin!.end(`FROM ${TEST_IMAGE}\nRUN grep -q '^ *${hostInterface}:' /proc/net/dev\n`);
    });

  const refusedBuild = await build('host');
  t.not(refusedBuild.code, 0, 'docker build --network host: refused');
  t.match(refusedBuild.stderr, /authorization denied by plugin .*: dockwarden refuses build on this host: image builds run outside the container checks \(gate\.allow/);
  for (const endpoint of ['session', 'grpc']) {
    t.equal((await raw('POST', `/v1.41/${endpoint}`, null, { connection: 'Upgrade', upgrade: 'h2c' })).status, 403, `BuildKit's /${endpoint}: refused`);
  }

  // What is at stake, once the admin allows builds: the step ran in the host's network namespace.
  allowed = ['builds'];
  t.teardown(async () => {
    allowed = [];
    await gated.docker.getImage(tag).remove().catch(() => {});
  });
  const hostBuild = await build('host');
  t.equal(hostBuild.code, 0, `allowed: the step saw the host's ${hostInterface}`);
  const ownNetwork = await build('default');
  t.not(ownNetwork.code, 0, "the same step in a container's own network namespace does not see it");
  t.match(ownNetwork.stderr, /returned a non-zero code: 1/, 'the step ran, and its grep found nothing');
});

t.test('volumes: local driver options are judged as the mount they become', async (t) => {
  const bindOf = (device: string) => ({ type: 'none', o: 'bind', device });
  const volumeCreate = (name: string, options: Record<string, string>) => gated.docker.createVolume({ Name: name, Driver: 'local', DriverOpts: options });
  await refused(t, volumeCreate(`dw-gate-etc-${process.pid}`, bindOf('/etc')), /sensitive-mounts/);
  await refused(t, volumeCreate('', bindOf('/etc')), /sensitive-mounts/);
  const plain = await volumeCreate(`dw-gate-plain-${process.pid}`, {});
  t.ok(plain, 'a plain volume is created');
  await gated.docker.getVolume(`dw-gate-plain-${process.pid}`).remove();
  // The same options given at create, for a volume that does not exist yet.
  await refused(
    t,
    create({ Mounts: [{ Type: 'volume', Source: `dw-gate-new-${process.pid}`, Target: '/h', VolumeOptions: { DriverConfig: { Name: 'local', Options: bindOf('/etc') } } }] }),
    /sensitive-mounts/,
  );
  t.equal(await containersLeft(), 0);
  const volumes = (await gated.docker.listVolumes()).Volumes ?? [];
  t.notOk(volumes.some((v) => v.Name.startsWith('dw-gate-etc') || v.Name.startsWith('dw-gate-new')), 'no volume was made');
});
