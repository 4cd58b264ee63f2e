/**
 * A dockerd of its own inside a network namespace (for the chaos soak and the flush tests): its own
 * data-root, exec-root, pidfile, socket, containerd namespace and cgroup parent; its docker0, its
 * iptables rules and its docker-proxy listeners are the namespace's, so an `nft flush ruleset` there
 * takes Docker's rules as on a real host and touches nothing of the machine's.
 *
 * It enters the namespace with `nsenter --net` (network only: `ip netns exec` would mount a sysfs of
 * the namespace over /sys and hide the cgroup tree dockerd reads).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { cgroup2Mount } from '../../src/adapters/proc/engine-cgroup.js';
import Docker from 'dockerode';
import { docker as testDocker, TEST_IMAGE } from './docker.js';

export interface NetnsDockerd {
  readonly socket: string;
  readonly docker: Docker;
  start(): Promise<void>;
  /** SIGTERM (SIGKILL after 30 s); its containers die with it (no live-restore). */
  stop(): Promise<void>;
  /** Its containers, dockerd, then its directories (and anything left mounted under them). */
  destroy(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * `name` makes its paths and containerd namespaces unique; `bip` is docker0's address inside the namespace.
 * `ownCgroup`: dockerd (and so docker-proxy) in a cgroup v2 of its own, `<name>-dockerd`, as systemd runs it
 * (docker.service), so the daemon closes docker-proxy's ports not judged by that cgroup; otherwise it
 * is in the test's (the root cgroup on the test machine), which the daemon does not use.
 */
export function netnsDockerd(netns: string, name: string, bip: string, { ownCgroup = false } = {}): NetnsDockerd {
  const run = `/run/${name}`;
  const dataRoot = `/var/lib/${name}`;
  const socket = `${run}/docker.sock`;
  mkdirSync(`${run}/exec`, { recursive: true });
  mkdirSync(dataRoot, { recursive: true });
  const docker = new Docker({ socketPath: socket, timeout: 30_000 });
  const cgroupMount = ownCgroup ? cgroup2Mount() : null;
  if (ownCgroup && cgroupMount === null) throw new Error('no cgroup v2 mounted under /sys/fs/cgroup');
  // Not `name`, its containers' parent (--cgroup-parent), under which runc makes theirs in the v2 tree too.
  const cgroup = cgroupMount === null ? null : `${cgroupMount}/${name}-dockerd`;
  if (cgroup) mkdirSync(cgroup);
  let child: ChildProcess | null = null;
  let log: string[] = [];
  const stop = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000)]);
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'), await exited;
  };
  return {
    socket,
    docker,
    stop,
    async start() {
      log = [];
      const command = ['nsenter', `--net=/run/netns/${netns}`, '--', 'dockerd',
        '--host', `unix://${socket}`, '--data-root', dataRoot, '--exec-root', `${run}/exec`, '--pidfile', `${run}/dockerd.pid`,
        '--bip', bip, '--containerd-namespace', name, '--containerd-plugins-namespace', `${name}-plugins`,
        '--cgroup-parent', name, '--log-level', 'warn'];
      // Into its cgroup before it execs dockerd, as systemd starts it: dockerd is never seen elsewhere.
      const c = cgroup === null
        ? spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
        : spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', `${cgroup}/cgroup.procs`, ...command], { stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      c.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
      c.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`dockerd in ${netns} exited during start-up:\n${log.join('').slice(-2000)}`);
        if (await docker.ping().then(() => true, () => false)) {
          // The containerd it started, out to the root cgroup once it answers, as containerd.service is
          // apart from docker.service: its shims, and the containers they start (runc leaves their cgroup
          // v2 as it finds it here), are born there, not in dockerd's.
          if (cgroupMount !== null) for (const pid of childrenOf(String(c.pid), 'containerd')) writeFileSync(`${cgroupMount}/cgroup.procs`, pid);
          return;
        }
        if (Date.now() > deadline) throw new Error(`dockerd in ${netns} did not answer within 60 s:\n${log.join('').slice(-2000)}`);
        await sleep(100);
      }
    },
    async destroy() {
      // Containers first (their shims would outlive a killed dockerd), then dockerd.
      // A create that was in flight when the cleanup listed may land afterwards: list again until none.
      for (let round = 0; round < 5 && child && child.exitCode === null; round++) {
        const list = await docker.listContainers({ all: true }).catch(() => []);
        if (list.length === 0) break;
        await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
        await sleep(500);
      }
      await stop();
      // A container dockerd did not get to unmount (it was killed, or one landed while it stopped).
      const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
      const mounts = mountinfo.map((l) => l.split(' ')[4] ?? '');
      for (const m of mounts.filter((m) => m.startsWith(`${dataRoot}/`) || m.startsWith(`${run}/`)).reverse()) {
        await new Promise((r) => spawn('umount', ['-l', m], { stdio: 'ignore' }).once('exit', r));
      }
      rmSync(dataRoot, { recursive: true, force: true });
      rmSync(run, { recursive: true, force: true });
      if (cgroup) await removeCgroup(cgroup);
      // Its containers' parent, left (empty) in every hierarchy by runc.
      for (const m of mountinfo.filter((l) => / - cgroup2? /.test(l)).map((l) => l.split(' ')[4] ?? '')) {
        try {
          rmdirSync(`${m}/${name}`);
        } catch {
          // none there
        }
      }
    },
  };
}

/** The children of `pid` named `comm`. */
function childrenOf(pid: string, comm: string): string[] {
  return readdirSync(`/proc/${pid}/task`)
    .flatMap((tid) => readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter((child) => child !== ''))
    .filter((child) => readFileSync(`/proc/${child}/comm`, 'utf8') === `${comm}\n`);
}

/** Ends what is left in `dir` (its own containerd, shims) and removes it, once its processes are gone. */
async function removeCgroup(dir: string): Promise<void> {
  writeFileSync(`${dir}/cgroup.kill`, '1');
  for (let tries = 0; ; tries++) {
    try {
      return rmdirSync(dir);
    } catch (error) {
      if (tries >= 50) throw error;
      await sleep(100);
    }
  }
}

/** Copies TEST_IMAGE from the shared test engine (read only) into `docker` by save and load. */
export async function loadTestImage(docker: Docker): Promise<void> {
  if (await docker.getImage(TEST_IMAGE).inspect().then(() => true, () => false)) return;
  const stream = await docker.loadImage(await testDocker.getImage(TEST_IMAGE).get());
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(null))));
}
