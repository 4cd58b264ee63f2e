/**
 * A rootful Podman of the tests' own: `podman system service` on /run/dw-podman/podman.sock, its
 * storage, run root, network config and events log under its own directories, its default network
 * `dwpodman` on 10.231.0.0/24 (bridge podman0), so nothing it does reaches the shared test dockerd.
 * netavark's chains (iptables, beside Docker's and ours) are taken out again by `stop`.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import Docker from 'dockerode';
import { DEFAULT_CMD, TEST_IMAGE, docker as testDocker } from './docker.js';

const RUN_DIR = '/run/dw-podman';
export const PODMAN_SOCKET = `${RUN_DIR}/podman.sock`;
const STORAGE = '/var/lib/dw-podman/storage';
const SUBNET = '10.231.0.0/24';
const START_TIMEOUT_MS = 30_000;
/**
 * Podman's defaults narrowed to those newer containers.conf files ship (no NET_RAW, MKNOD,
 * AUDIT_WRITE), as a host may set them: Podman then reports capabilities against a set other than Docker's.
 */
export const PODMAN_DEFAULT_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT'];

const CONTAINERS_CONF = `[containers]
default_capabilities = [${PODMAN_DEFAULT_CAPABILITIES.map((c) => `"${c}"`).join(', ')}]
[network]
network_backend = "netavark"
network_config_dir = "${RUN_DIR}/networks"
default_network = "dwpodman"
default_subnet = "${SUBNET}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${RUN_DIR}/events.log"
runtime = "runc"
[engine.runtimes]
dw-host-caps = ["/run/dw-test/runc-host-caps"]
`;

export interface PodmanService {
  readonly docker: Docker;
  /** Creates and starts a container (the VM cannot raise rlimits: explicit ones); resolves with its id. */
  run(options?: { readonly publish?: number; readonly hostConfig?: Docker.HostConfig; readonly cmd?: string[] }): Promise<string>;
  stop(): Promise<void>;
}

export function podmanInstalled(): boolean {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const run = (file: string, ...args: string[]): string => execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** netavark leaves its (emptied) chains and the jumps to them when the last container goes: taken out here. */
function removeNetavarkChains(): void {
  for (const table of ['filter', 'nat']) {
    const rules = run('iptables-nft', '-w', '-t', table, '-S').split('\n');
    for (const rule of rules.filter((r) => /^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) .*-j NETAVARK/.test(r))) {
      run('iptables-nft', '-w', '-t', table, '-D', ...rule.slice(3).match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, '')));
    }
    const chains = rules.flatMap((r) => /^-N (NETAVARK\S*)$/.exec(r)?.[1] ?? []);
    for (const chain of chains) run('iptables-nft', '-w', '-t', table, '-F', chain);
    for (const chain of chains) run('iptables-nft', '-w', '-t', table, '-X', chain);
  }
}

export async function startPodman(): Promise<PodmanService> {
  mkdirSync(`${RUN_DIR}/networks`, { recursive: true });
  mkdirSync(STORAGE, { recursive: true });
  writeFileSync(`${RUN_DIR}/containers.conf`, CONTAINERS_CONF);
  const log: string[] = [];
  const child = spawn('podman', ['--root', STORAGE, '--runroot', `${RUN_DIR}/run`, '--tmpdir', `${RUN_DIR}/tmp`, 'system', 'service', '--time=0', `unix://${PODMAN_SOCKET}`],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONTAINERS_CONF: `${RUN_DIR}/containers.conf` } });
  child.stdout.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => log.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const docker = new Docker({ socketPath: PODMAN_SOCKET, timeout: 60_000 });
  const removeAll = async (): Promise<void> => {
    const left = await docker.listContainers({ all: true });
    await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  };
  const stop = async (): Promise<void> => {
    await removeAll().catch(() => {});
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000).unref())]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    removeNetavarkChains();
  };
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await docker.ping().then(() => true, () => false))) {
      if (child.exitCode !== null) throw new Error(`podman service exited during start-up:\n${log.join('')}`);
      if (Date.now() > deadline) throw new Error(`podman service did not answer within ${START_TIMEOUT_MS} ms:\n${log.join('')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await removeAll();
    if (!(await docker.getImage(TEST_IMAGE).inspect().then(() => true, () => false))) {
      const loaded = await docker.loadImage(await testDocker.getImage(TEST_IMAGE).get());
      await new Promise((resolve, reject) => docker.modem.followProgress(loaded, (error) => (error ? reject(error) : resolve(null))));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    docker,
    async run({ publish, hostConfig, cmd } = {}) {
      const container = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: cmd ?? DEFAULT_CMD,
        ...(publish !== undefined && { ExposedPorts: { '80/tcp': {} } }),
        HostConfig: {
          Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }, { Name: 'nproc', Soft: 1024, Hard: 1024 }],
          ...(publish !== undefined && { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(publish) }] } }),
          ...hostConfig,
        },
      });
      await container.start();
      return container.id;
    },
    stop,
  };
}
