import type { Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { extractRoot, rootTarball, run, type Run } from './debian-root.js';
import type { ExecResult, NetnsClient } from './netns.js';

/**
 * A Debian 12 root booted under systemd as PID 1 (systemd-nspawn -b), with Debian's own docker.io
 * running inside it, for the tests of the units as installed (issue #15).
 *
 * Namespaces: the root gets its own mount, PID, UTS, IPC and cgroup namespaces (nspawn's default) and
 * a network namespace of its own. dockerd runs inside, so the daemon sees its containers'
 * /proc/<pid> (same PID namespace) and the netfilter the engine uses (same network namespace), as on
 * a real host. The network namespace is private, never the host's: the host's netfilter and the
 * shared test dockerd stay untouched (other sessions use both), and it is made fresh for every boot,
 * so a reboot starts with no ruleset and no docker0 left from the last boot, as a real reboot does.
 * It is made by the test, not by nspawn (--network-namespace-path), so its address is set before
 * anything in the root starts: a client can knock from the first packet of a boot.
 *
 * What dockerd needs inside nspawn, found by trying on this kernel (cgroup v1 "hybrid" host):
 *   SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1  cgroup v2 inside: on a v1 host nspawn mounts the v1
 *                                       controllers read-only, and runc fails with "mkdir
 *                                       /sys/fs/cgroup/cpuset/docker: read-only file system". On v2
 *                                       the root's systemd owns its subtree; dockerd uses the systemd
 *                                       cgroup driver (no resource controllers: limits are not tested).
 *   --capability=all                    dockerd and runc need what a root dockerd has on a host
 *                                       (CAP_SYS_ADMIN for mounts, CAP_NET_ADMIN, ...).
 *   --system-call-filter='@keyring bpf' nspawn's own filter denies both: runc creates a session
 *                                       keyring per container ("unable to join session keyring") and
 *                                       attaches the cgroup v2 device filter as an eBPF program
 *                                       ("bpf_prog_query(BPF_CGROUP_DEVICE) failed").
 * The checkout and the host's Node.js are bind-mounted read-only (/src, /usr/bin/node, npm), so
 * scripts/install.sh runs inside as an admin runs it on a host with Node.js installed.
 *
 * Client: a second namespace joined to the root by a veth pair, the root end 198.51.100.1/24, the
 * client end the given 198.51.100.x addresses: test traffic never touches the host's namespace.
 */
export const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'nftables', 'iptables', 'procps', 'docker.io', 'iproute2', 'python3', 'curl'];
export const ROOT_ADDR = '198.51.100.1';
const BOOT_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 60_000;
const EXEC_TIMEOUT_MS = 120_000;
/** npm, beside the node that runs the tests (Debian's and Node.js's own layouts alike): stage-program.sh prunes with it. */
const NPM = join(dirname(process.execPath), '../lib/node_modules/npm');
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface BootedRoot {
  readonly dir: string;
  /** The root's systemd (PID 1 inside) as the host sees it: the target of nsenter. */
  readonly pid: number;
  /** The client namespace (198.51.100.x sources), usable with test/helpers/probe.ts. */
  readonly client: NetnsClient;
  /** Runs argv inside the booted root (all its namespaces), stdin closed, bounded. */
  exec(argv: readonly string[], timeoutMs?: number): Run;
  /** Boots (again): fresh network namespace, nspawn, until `systemctl is-system-running` settles. */
  boot(): Promise<void>;
  /** Powers the root off (SIGTERM to nspawn: systemd shuts down) and waits for nspawn to exit. */
  shutdown(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ip(...args: string[]): void {
  const r = run('ip', args);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.out}`);
}

/** Extracts a root with PACKAGES (cached, see rootTarball) and boots it; everything is undone at teardown. */
export async function bootedRoot(t: Test, clientAddrs: readonly string[]): Promise<BootedRoot> {
  const tag = String(process.pid % 100000);
  const rootNs = `dw-sdboot-${tag}`;
  const clientNs = `dw-sdcli-${tag}`;
  const [rootVeth, clientVeth] = [`dwsb${tag}r`, `dwsb${tag}c`];
  let nspawn: ChildProcess | null = null;
  let exited: Promise<unknown> = Promise.resolve();
  let pid = 0; // the root's systemd, as the host sees it
  let log = '';

  const shutdown = async (): Promise<void> => {
    if (nspawn && nspawn.exitCode === null && nspawn.signalCode === null) {
      nspawn.kill('SIGTERM');
      const killer = setTimeout(() => nspawn?.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(killer);
    }
    nspawn = null;
    // The pair first: a deleted namespace is torn down asynchronously, and its veth with it, so the
    // next boot could find the names still taken.
    run('ip', ['-n', rootNs, 'link', 'del', rootVeth]);
    run('ip', ['netns', 'del', rootNs]);
  };
  const dir = extractRoot(t, rootTarball(PACKAGES), async () => {
    await shutdown();
    run('ip', ['netns', 'del', clientNs]);
  });
  mkdirSync(join(dir, 'src'));
  mkdirSync(join(dir, 'usr/lib/node_modules/npm'), { recursive: true });
  symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(dir, 'usr/bin/npm'));
  ip('netns', 'add', clientNs);

  const exec = (argv: readonly string[], timeoutMs = EXEC_TIMEOUT_MS): Run =>
    run('nsenter', ['-t', String(pid), '-a', 'env', '-i', `PATH=${PATH}`, 'LANG=C.UTF-8', 'HOME=/root', ...argv], process.env, timeoutMs);

  const network = (): void => {
    ip('netns', 'add', rootNs);
    ip('link', 'add', rootVeth, 'netns', rootNs, 'type', 'veth', 'peer', 'name', clientVeth, 'netns', clientNs);
    ip('-n', rootNs, 'addr', 'add', `${ROOT_ADDR}/24`, 'dev', rootVeth);
    for (const a of clientAddrs) ip('-n', clientNs, 'addr', 'add', `${a}/24`, 'dev', clientVeth);
    for (const [ns, dev] of [[rootNs, rootVeth], [clientNs, clientVeth], [rootNs, 'lo'], [clientNs, 'lo']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
  };

  const boot = async (): Promise<void> => {
    network();
    const args = ['-D', dir, '--keep-unit', '--register=no', '-b', '--console=passive', `--network-namespace-path=/run/netns/${rootNs}`,
      '--capability=all', '--system-call-filter=@keyring bpf',
      `--bind-ro=${join(import.meta.dirname, '../..')}:/src`, `--bind-ro=${process.execPath}:/usr/bin/node`, `--bind-ro=${NPM}:/usr/lib/node_modules/npm`];
    // --pdeathsig: should this process die without its teardown, nspawn still powers the root off.
    const child = spawn('setpriv', ['--pdeathsig', 'SIGTERM', 'systemd-nspawn', ...args], { env: { ...process.env, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    nspawn = child;
    log = '';
    child.stdout.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    exited = new Promise((r) => child.once('exit', r));
    const until = Date.now() + BOOT_TIMEOUT_MS;
    pid = 0;
    let state = '';
    while (Date.now() < until && child.exitCode === null) {
      pid ||= childSystemd(child.pid!);
      if (pid) {
        state = exec(['systemctl', 'is-system-running', '--wait'], 60_000).stdout.trim();
        if (state === 'running' || state === 'degraded') return;
      }
      await sleep(200);
    }
    throw new Error(`the root did not boot (state ${state || 'unknown'}); nspawn said:\n${log.slice(-3000)}`);
  };

  const client: NetnsClient = {
    name: clientNs,
    hostVeth: rootVeth,
    clientVeth,
    hostAddr: ROOT_ADDR,
    addrs: clientAddrs,
    exec: (cmd, args = [], opts = {}) =>
      new Promise<ExecResult>((resolve) => {
        const child = spawn('ip', ['netns', 'exec', clientNs, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 10_000, killSignal: 'SIGKILL' });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
      }),
    destroy: async () => {
      run('ip', ['netns', 'del', clientNs]);
    },
  };

  await boot();
  return { dir, client, exec, boot, shutdown, get pid() { return pid; } };
}

/** The pid of the systemd nspawn started (a child of nspawn named systemd), 0 while there is none. */
function childSystemd(nspawnPid: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (/^Name:\s+systemd$/m.test(status) && new RegExp(`^PPid:\\s+${nspawnPid}$`, 'm').test(status)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}
