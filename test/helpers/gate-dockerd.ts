/**
 * A second private dockerd started with `--authorization-plugin`, for the gate's tests. Docker's
 * plugin directories are shared by every dockerd on the machine, so the plugin gets a unique name
 * and a spec file (`/etc/docker/plugins/<name>.spec`) that is removed again by `stop`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { TEST_IMAGE, docker as testDocker } from './docker.js';

const RUN_DIR = '/run/dw-gate';
const SOCKET = `${RUN_DIR}/docker.sock`;
const DATA_ROOT = '/var/lib/dw-gate/docker';
const SPEC_DIR = '/etc/docker/plugins';
/** Installed by scripts/test-env.sh for the main test dockerd; this one uses the same shim. */
const HOST_CAPS_SHIM = '/run/dw-test/runc-host-caps';
const START_TIMEOUT_MS = 30_000;

export interface GateDockerd {
  /** The plugin name dockerd asks (`authorization denied by plugin <name>: …`). */
  readonly pluginName: string;
  readonly socket: string;
  readonly docker: Docker;
  stop(): Promise<void>;
}

/** Starts the gate dockerd asking the plugin listening on `pluginSocket`; the image TEST_IMAGE is loaded into it. */
export async function startGateDockerd(pluginSocket: string): Promise<GateDockerd> {
  const pluginName = `dw-gate-test-${randomBytes(4).toString('hex')}`;
  const spec = `${SPEC_DIR}/${pluginName}.spec`;
  mkdirSync(SPEC_DIR, { recursive: true });
  writeFileSync(spec, `unix://${pluginSocket}\n`);
  await stopLeftover();
  mkdirSync(`${RUN_DIR}/exec`, { recursive: true });
  mkdirSync(DATA_ROOT, { recursive: true });
  const log: string[] = [];
  const child = spawn(
    'dockerd',
    [
      '--host', `unix://${SOCKET}`, '--data-root', DATA_ROOT, '--exec-root', `${RUN_DIR}/exec`, '--pidfile', `${RUN_DIR}/dockerd.pid`,
      '--bridge', 'none', '--iptables=false', '--ip-masq=false', '--containerd-namespace', 'dw-gate',
      '--containerd-plugins-namespace', 'dw-gate-plugins', '--cgroup-parent', 'dw-gate',
      '--add-runtime', `dw-host-caps=${HOST_CAPS_SHIM}`, '--authorization-plugin', pluginName,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const docker = new Docker({ socketPath: SOCKET, timeout: 60_000 });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(spec, { force: true });
  };
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`gate dockerd exited during start-up:\n${log.join('')}`);
      if (await docker.ping().then(() => true, () => false)) break;
      if (Date.now() > deadline) throw new Error(`gate dockerd did not answer within ${START_TIMEOUT_MS} ms:\n${log.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    // Its data root outlives runs; what an interrupted run left must not show in this one's listings.
    const left = await docker.listContainers({ all: true });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
    if (!(await docker.getImage(TEST_IMAGE).inspect().then(() => true, () => false))) {
      const image = await testDocker.getImage(TEST_IMAGE).get();
      const loaded = await docker.loadImage(image);
      await new Promise((resolve, reject) => docker.modem.followProgress(loaded, (error) => (error ? reject(error) : resolve(null))));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { pluginName, socket: SOCKET, docker, stop };
}

/** A gate dockerd an interrupted run left behind holds the pidfile: the next one would refuse to start. */
async function stopLeftover(): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(`${RUN_DIR}/dockerd.pid`, 'utf8'));
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(SOCKET)) return;
  } catch {
    return;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (() => { try { process.kill(pid, 0); return true; } catch { return false; } })()) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
