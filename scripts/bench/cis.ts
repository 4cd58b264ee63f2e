/**
 * cis (issue #20): `dockwarden check --cis --json` against docker-bench-security's section 5
 * (`-c container_runtime`) on the same ~50 running containers of the test engine: plain, cap-adds,
 * privileged (runtime dw-host-caps, two with a privileged exec running), host pid/net, the engine
 * socket and /etc mounted, a device, seccomp off, well-configured, published ports, restart always.
 *
 * docker-bench-security is not vendored: DW_BENCH_DOCKER_BENCH names a checkout of it (the figures
 * in the README are from commit ff26d67, its 1.6.0). It runs with the `docker` CLI and
 * DOCKER_HOST set to the test engine. The floor is one `docker inspect` of every running container
 * through the same CLI: the least any tool judging the configuration reads. Runs alternate
 * (DW_BENCH_CIS_RUNS each, default 3; dockwarden and the floor warmed up once).
 *
 * The containers exist only while the integration-test lock (/run/dw-itest.lock) is held: a `flock`
 * child holds it until its stdin closes, which also happens when this process dies.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { api, BENCH_LABEL, CLI, cleanEnv, cleanupContainersOnExit, DOCKER_SOCKET, fmtStats, main, onCleanup, printJson, ratio, removeBenchContainers, say, scratchDir, stats, TEST_IMAGE, timed } from './lib.js';

const exec = promisify(execFile);
const RUNS = Number(process.env.DW_BENCH_CIS_RUNS ?? 3);
const DOCKER_BENCH = process.env.DW_BENCH_DOCKER_BENCH ?? '';
const TEST_LOCK = '/run/dw-itest.lock';
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 50) throw new Error('DW_BENCH_CIS_RUNS must be 1..50');

const POLICY = `version: 1
images: { default: allow, local: allow }
containers:
  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN, SYS_PTRACE], action: alert }
  privileged: { action: alert }
  host-namespaces: { namespaces: [pid, net, ipc, uts, userns], action: alert }
  docker-socket: { action: alert }
  sensitive-mounts: { paths: [/, /boot, /dev, /etc, /lib, /proc, /sys, /usr], action: alert }
  devices: { action: alert }
  privileged-exec: { action: alert }
  no-new-privileges: { action: alert }
  seccomp-unconfined: { action: alert }
  apparmor-unconfined: { action: alert }
  resource-limits: { require: [memory, pids, cpu], action: alert }
  root-user: { action: alert }
`;

/** The set: [kind, how many, HostConfig (and Config) of each]. */
const SET: ReadonlyArray<readonly [string, number, Docker.HostConfig, Partial<Docker.ContainerCreateOptions>?]> = [
  ['plain', 6, {}],
  ['cap-add', 5, { CapAdd: ['SYS_ADMIN', 'NET_ADMIN'] }],
  ['privileged', 4, { Privileged: true, Runtime: 'dw-host-caps' }],
  ['host-pid', 4, { PidMode: 'host' }],
  ['host-net', 4, { NetworkMode: 'host' }],
  ['socket', 4, { Binds: [`${DOCKER_SOCKET}:/var/run/docker.sock`] }],
  ['etc', 4, { Binds: ['/etc:/host-etc:ro'] }],
  ['device', 4, { Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }] }],
  ['seccomp-off', 4, { SecurityOpt: ['seccomp=unconfined'] }],
  ['well-configured', 5, { Memory: 64 << 20, PidsLimit: 64, CpuShares: 512, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], ReadonlyRootfs: true }, { User: '1000:1000' }],
  ['published', 4, { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '' }] } }, { ExposedPorts: { '80/tcp': {} } }],
  ['restart-always', 4, { RestartPolicy: { Name: 'always' } }],
];

/** The `flock` child holding the integration-test lock while our containers exist. */
let lockHolder: ReturnType<typeof spawn> | null = null;

// Not `docker: true`: that preflight refuses while tests wait for the lock; this bench takes that
// lock itself (below) and waits its turn like a test. The time limit includes that wait.
await main('cis', Number(process.env.DW_BENCH_CIS_LIMIT_SECONDS ?? 2400), { hostTable: false, docker: false, daemon: false }, async () => {
  const script = join(DOCKER_BENCH, 'docker-bench-security.sh');
  if (DOCKER_BENCH === '' || !existsSync(script)) {
    say(`# cis: docker-bench-security cannot run: DW_BENCH_DOCKER_BENCH (${DOCKER_BENCH || 'unset'}) is not a checkout of it`);
    throw new Error('no docker-bench-security checkout');
  }
  const dir = scratchDir();
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const dockerEnv = { ...process.env, DOCKER_HOST: `unix://${DOCKER_SOCKET}` };

  await holdTestLock();
  say('# cis: holding the integration-test lock');
  await removeBenchContainers(); // leftovers of an interrupted run
  cleanupContainersOnExit();
  const ids: string[] = [];
  for (const [kind, count, hostConfig, config] of SET) {
    for (let i = 0; i < count; i++) {
      const container = await api.createContainer({
        name: `dwb-cis-${process.pid}-${kind}-${i}`,
        Image: TEST_IMAGE,
        Cmd: ['sleep', '3600'],
        Labels: { [BENCH_LABEL]: String(process.pid) },
        ...config,
        HostConfig: hostConfig,
      });
      await container.start();
      ids.push(container.id);
    }
  }
  // Two privileged containers also run a privileged exec (5.23).
  for (const id of ids.slice(11, 13)) {
    const e = await api.getContainer(id).exec({ Cmd: ['sleep', '3600'], Privileged: true, AttachStdout: false, AttachStderr: false });
    await e.start({ Detach: true });
  }
  say(`# cis: ${ids.length} containers running`);

  const dockwarden = async () => {
    const out = await exec(process.execPath, [CLI, 'check', '--cis', '--json'], { env: cleanEnv({ DOCKWARDEN_POLICY: policyFile, DOCKWARDEN_DOCKER_SOCKET: DOCKER_SOCKET, DOCKWARDEN_STATE_DIR: dir }), maxBuffer: 64 << 20 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }));
    return JSON.parse(out.stdout) as { containers: number; items: Array<{ id: string; status: string; failing: unknown[] }> };
  };
  const dockerBench = async () => {
    const log = join(dir, `docker-bench-${Date.now()}.log`);
    await exec('bash', [script, '-c', 'container_runtime', '-l', log], { cwd: DOCKER_BENCH, env: dockerEnv, maxBuffer: 64 << 20 });
    return log;
  };
  const floor = async () => {
    const { stdout } = await exec('docker', ['ps', '-q'], { env: dockerEnv });
    await exec('docker', ['inspect', ...stdout.split('\n').filter((l) => l !== '')], { env: dockerEnv, maxBuffer: 64 << 20 });
  };

  // Warm-up of the two cheap ones only: one docker-bench run costs as much as all the others together.
  const first = await dockwarden();
  await floor();
  const times = { dockwarden: [] as number[], dockerBench: [] as number[], floor: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    times.floor.push((await timed(floor))[1]);
    times.dockwarden.push((await timed(dockwarden))[1]);
    times.dockerBench.push((await timed(dockerBench))[1]);
  }
  // Done with the engine: take the containers away before the figures, and let the lock go.
  await removeBenchContainers();
  await releaseTestLock();

  const s = { dockwarden: stats(times.dockwarden), dockerBench: stats(times.dockerBench), floor: stats(times.floor) };
  const warn = first.items.filter((i) => i.status === 'WARN').map((i) => `${i.id}(${i.failing.length})`);
  say(`# cis: dockwarden judged ${first.containers} containers; WARN items (failing containers): ${warn.join(' ')}`);
  say(`floor (docker ps + docker inspect of all)  ${fmtStats(s.floor)}`);
  say(`dockwarden check --cis --json             ${fmtStats(s.dockwarden)}`);
  say(`docker-bench-security -c container_runtime ${fmtStats(s.dockerBench)}`);
  say(`ratio docker-bench / dockwarden (p50): ${ratio(s.dockerBench.p50, s.dockwarden.p50)}; dockwarden / floor (p50): ${ratio(s.dockwarden.p50, s.floor.p50)}`);
  printJson('cis', { containers: ids.length, runs: RUNS, floor: s.floor, dockwarden: s.dockwarden, dockerBench: s.dockerBench, ratioDockerBench: ratio(s.dockerBench.p50, s.dockwarden.p50), ratioFloor: ratio(s.dockwarden.p50, s.floor.p50) });
});

/** Takes the integration-test lock through a `flock` child that holds it until its stdin closes. */
async function holdTestLock(): Promise<void> {
  const child = spawn('flock', [TEST_LOCK, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  lockHolder = child;
  onCleanup('test lock', releaseTestLock);
  const [chunk] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => [null])])) as [Buffer | null];
  if (chunk === null || !chunk.toString().startsWith('locked')) throw new Error(`cannot take ${TEST_LOCK}`);
}

async function releaseTestLock(): Promise<void> {
  const child = lockHolder;
  lockHolder = null;
  if (!child || child.exitCode !== null) return;
  child.stdin!.end();
  await once(child, 'exit');
}
