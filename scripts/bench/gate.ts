/**
 * gate (issue #14): what the authorization gate costs and what it prevents, on a dockerd of the
 * bench's own that reads a daemon.json (the gate tests' engine), with the real daemon from dist/
 * serving the gate.
 *
 * 1. `docker create` of the same plain container, with the gate and without it, in alternating
 *    phases on the same engine (`dockwarden gate install|uninstall` switch it): the floor is the
 *    create without the gate. Targets: p50 ratio ≤ 1.1, p99 ratio ≤ 1.2.
 * 2. The gate's decision time as dockerd sees it: an `AuthZPlugin.AuthZReq` carrying that create
 *    body, sent straight to the gate's socket (target p99 ≤ 1 ms), beside the same round trip for a
 *    request the gate lets through unread (`GET /containers/json`): the protocol's own floor.
 * 3. Exposure: DW_BENCH_GATE_ATTEMPTS (default 200) attempts to create and start a
 *    `--cap-add SYS_ADMIN` container with the gate on: how many exist, how many ran (target 0).
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { startGateDockerd, GATE_DOCKERD_PIDFILE } from '../../test/helpers/gate-dockerd.js';
import { CLI, cleanEnv, fmtStats, main, now, onCleanup, printJson, ratio, removeTableOnExit, say, scratchDir, sleep, spawnDaemon, stats, TEST_IMAGE, timed } from './lib.js';

const CREATES = Number(process.env.DW_BENCH_GATE_CREATES ?? 100);
const ATTEMPTS = Number(process.env.DW_BENCH_GATE_ATTEMPTS ?? 200);
const DECISIONS = 500;
const TARGET_P50 = 1.1;
const TARGET_P99 = 1.2;
const TARGET_DECISION_P99_MS = 1;
const GATED_SOCKET = '/run/dw-gate/docker.sock';

if (!Number.isInteger(CREATES) || CREATES < 10 || CREATES > 1000) throw new Error('DW_BENCH_GATE_CREATES must be 10..1000');
if (!Number.isInteger(ATTEMPTS) || ATTEMPTS < 1 || ATTEMPTS > 1000) throw new Error('DW_BENCH_GATE_ATTEMPTS must be 1..1000');

const POLICY = `version: 1
containers:
  capabilities: { forbidden: [SYS_ADMIN], action: kill }
  privileged: { action: kill }
`;

await main('gate', 170, { hostTable: true, docker: true, daemon: true }, async () => {
  const dir = scratchDir();
  const gateSocket = join(dir, 'gate.sock');
  const daemonJson = join(dir, 'daemon.json');
  writeFileSync(daemonJson, '{}\n');
  removeTableOnExit();
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: GATED_SOCKET, extraConfig: `gate:\n  enabled: true\n  socket: ${gateSocket}` });
  await daemon.waitFor((l) => l.msg === 'authorization gate serving');
  const gated = await startGateDockerd(gateSocket, { daemonJson });
  onCleanup('gate dockerd', () => gated.stop());
  await daemon.waitFor((l) => l.msg === 'reconciled');
  const pluginName = `dw-bench-gate-${process.pid}`;
  const configFile = join(daemon.dir, 'config.yaml');
  const switchGate = async (on: boolean) => {
    execFileSync(process.execPath, [CLI, 'gate', on ? 'install' : 'uninstall', '--config', configFile, '--daemon-json', daemonJson, '--docker-pidfile', GATE_DOCKERD_PIDFILE, '--plugin-name', pluginName], { env: cleanEnv(), stdio: 'ignore' });
    // dockerd re-reads daemon.json asynchronously: a forbidden create tells whether the gate is asked.
    const deadline = now() + 30_000;
    for (;;) {
      const refused = await gated.docker.createContainer({ Image: TEST_IMAGE, Cmd: ['true'], HostConfig: { CapAdd: ['SYS_ADMIN'] } }).then(
        async (c) => (await c.remove(), false),
        (error: { statusCode?: number }) => error.statusCode === 403,
      );
      if (refused === on) return;
      if (now() > deadline) throw new Error(`dockerd did not ${on ? 'take' : 'drop'} the gate within 30 s`);
      await sleep(100);
    }
  };
  onCleanup('gate out of daemon.json', () => switchGate(false).catch(() => {}));
  const plain = { Image: TEST_IMAGE, Cmd: ['true'], Labels: { 'dw-bench': String(process.pid) } };
  const createOnce = async (): Promise<number> => {
    const [container, took] = await timed(() => gated.docker.createContainer(plain));
    await container.remove();
    return took;
  };

  // 1. create latency, alternating phases: without, with, without, with, …
  const without: number[] = [];
  const withGate: number[] = [];
  const phases = 6;
  for (let phase = 0; phase < phases; phase++) {
    const on = phase % 2 === 1;
    await switchGate(on);
    for (let i = 0; i < 3; i++) await createOnce(); // warm-up after the switch
    for (let i = 0; i < CREATES / (phases / 2); i++) (on ? withGate : without).push(await createOnce());
  }

  // 2. decision time at the gate's socket, as dockerd asks
  const body = Buffer.from(JSON.stringify(plain)).toString('base64');
  const ask = (message: object): Promise<number> =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(message);
      const t0 = now();
      const req = request({ socketPath: gateSocket, method: 'POST', path: '/AuthZPlugin.AuthZReq', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(now() - t0));
      });
      req.on('error', reject);
      req.end(payload);
    });
  const createDecision: number[] = [];
  const passDecision: number[] = [];
  for (let i = 0; i < DECISIONS; i++) {
    createDecision.push(await ask({ RequestMethod: 'POST', RequestUri: '/v1.41/containers/create', RequestBody: body }));
    passDecision.push(await ask({ RequestMethod: 'GET', RequestUri: '/v1.41/containers/json' }));
  }

  // 3. exposure: forbidden containers with the gate on
  await switchGate(true);
  let refused = 0;
  for (let i = 0; i < ATTEMPTS; i++) {
    const attempt = await gated.docker.createContainer({ ...plain, Cmd: ['sleep', '60'], HostConfig: { CapAdd: ['SYS_ADMIN'] } }).then(
      async (c) => (await c.start(), c),
      (error: { statusCode?: number }) => (error.statusCode === 403 ? null : Promise.reject(error)),
    );
    if (attempt === null) refused++;
  }
  const existing = (await gated.docker.listContainers({ all: true, filters: { label: [`dw-bench=${process.pid}`] } })).length;
  await switchGate(false);

  const W = stats(without);
  const G = stats(withGate);
  const D = stats(createDecision);
  const P = stats(passDecision);
  const r50 = ratio(G.p50, W.p50);
  const r99 = ratio(G.p99, W.p99);
  say(`gate: docker create, ${withGate.length} with the gate and ${without.length} without, alternating phases on one engine`);
  say(`  with the gate      ${fmtStats(G)}`);
  say(`  floor: without     ${fmtStats(W)}`);
  say(`  ratio p50 ${r50} (target ≤ ${TARGET_P50}: ${r50 <= TARGET_P50 ? 'met' : 'NOT met'}), p99 ${r99} (target ≤ ${TARGET_P99}: ${r99 <= TARGET_P99 ? 'met' : 'NOT met'})`);
  say(`  decision of a create at the gate's socket   ${fmtStats(D)} (target p99 ≤ ${TARGET_DECISION_P99_MS} ms: ${D.p99 <= TARGET_DECISION_P99_MS ? 'met' : 'NOT met'})`);
  say(`  floor: a request let through unread         ${fmtStats(P)}`);
  say(`  exposure: ${ATTEMPTS} forbidden create+start attempts: ${refused} refused, ${existing} containers exist (target 0)`);
  printJson('gate', {
    creates_with_ms: G,
    creates_without_ms: W,
    ratio_p50: r50,
    ratio_p99: r99,
    target_ratio_p50: TARGET_P50,
    target_ratio_p99: TARGET_P99,
    decision_create_ms: D,
    decision_passthrough_ms: P,
    target_decision_p99_ms: TARGET_DECISION_P99_MS,
    exposure: { attempts: ATTEMPTS, refused, containers: existing },
  });
});
