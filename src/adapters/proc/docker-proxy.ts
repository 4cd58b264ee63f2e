/**
 * The host ports Docker's userland proxy (docker-proxy, one process per published port and family)
 * serves in this network namespace. Docker's DNAT normally takes a published port's traffic past it;
 * when that DNAT is gone (an `nft flush ruleset` takes it until dockerd restarts) docker-proxy serves
 * the port on the input path, and a port not yet judged is then open to every source. The firewall
 * enforcer closes these ports until they are judged (FirewallEnforcer.repairDrift).
 *
 * Read from procfs: the children whose `comm` is docker-proxy of the dockerd that serves the engine
 * socket the daemon watches, their `-proto`, `-host-ip` and `-host-port` arguments. Another engine's
 * ports in the same namespace are never judged by this daemon, so closing them "until judged" would
 * close them for good. When no dockerd in this namespace is found holding that socket (it is not
 * listening, or runs elsewhere), every docker-proxy of the namespace counts: the side that closes.
 * Anyone can name a process docker-proxy: the worst a fake one does is close a port until judged.
 */
import { opendirSync, readdirSync, readlinkSync, realpathSync, type Dir } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { PROTOCOLS, type Protocol } from '../../domain/facts.js';
import { readProcFile, readProcFiles, readProcStat } from './proc-file.js';

export interface ProxyListener {
  readonly proto: Protocol;
  /** As docker-proxy got it: `0.0.0.0`, `::` or one address. */
  readonly hostIp: string;
  readonly hostPort: number;
}

const FLAGS = ['-proto', '-host-ip', '-host-port'] as const;
/** `comm` is at most 16 bytes with its newline. */
const MAX_COMM_BYTES = 64;

/**
 * Reads docker-proxy's listeners fast enough for a repair to wait for them: procfs holds hundreds of
 * processes (a full read of every `comm` took 26–260 ms on a loaded 2-core machine), docker-proxy's
 * parent is dockerd, and dockerd's children are listed in `/proc/<pid>/task/<tid>/children`. So a full
 * read finds this namespace's dockerd processes once (`prime`, off the repair's path), and every
 * read after it lists their children only. A dockerd gone (a restart), or none found, means a full
 * read again.
 * A full read's list of processes is one `readdir`, their names one thread-pool job (proc-file.ts
 * readProcFiles) and the namespace's unix sockets another; the rest is read synchronously: as thousands
 * of asynchronous reads at once, each with a 64 KiB buffer, a full read of a host with 1,000 containers
 * took ~12 MiB of the daemon's RSS.
 */
export interface DockerProxyReader {
  read(): Promise<ProxyListener[]>;
  /** Does the full read now, so the first `read` is a fast one. */
  prime(): void;
  /**
   * The pid of the watched engine's dockerd, by a full read. When none here holds the engine socket (the
   * daemon watches a socket proxy in front of it), the only dockerd of this namespace, as docker-proxy's
   * listeners count then; null when there is none, or more than one.
   */
  engine(): Promise<string | null>;
}

/** `engineSocket`: the Docker API socket the daemon watches (config `docker.socket`). */
export function dockerProxyReader(engineSocket: string, proc = '/proc'): DockerProxyReader {
  let dockerds: Promise<Dockerd[]> = Promise.resolve([]);
  const find = (): Promise<Found> => {
    const result = findDockerds(proc, engineSocket);
    dockerds = result.then((r) => (r.engine ? [r.engine] : r.dockerds), () => []);
    return result;
  };
  const full = async (): Promise<ProxyListener[]> => listeners(proc, await find());
  return {
    prime: () => void full().catch(() => {}),
    async engine() {
      const { engine, dockerds: here } = await find();
      return (engine ?? (here.length === 1 ? here[0] : undefined))?.pid ?? null;
    },
    async read() {
      const known = await dockerds;
      const fast = known.length === 0 ? null : await childrenRead(proc, known).catch(() => null);
      return fast ?? (await full());
    },
  };
}

/** A dockerd process: its pid and start time (a pid reused by another process is not it). */
interface Dockerd {
  readonly pid: string;
  readonly started: string;
}

/** Every process, by name: this namespace's dockerd processes, the watched engine's among them, and every docker-proxy. */
interface Found {
  readonly dockerds: Dockerd[];
  /** The watched engine's, when found. */
  readonly engine: Dockerd | null;
  /** docker-proxy processes of any namespace, by pid. */
  readonly proxies: string[];
  /** The daemon's own network namespace (`/proc/self/ns/net`). */
  readonly ownNet: string;
}

/**
 * A full read's first part, which is all `engine()` needs (at the start of every reconcile, beside its
 * first requests to the engine): only the few links and descriptors of dockerd are read on the event
 * loop; the list of processes, their names and the namespace's unix sockets are read off it, so that it
 * is free to send those requests and take their answers meanwhile.
 */
async function findDockerds(proc: string, engineSocket: string): Promise<Found> {
  const ownNet = readlinkSync(`${proc}/self/ns/net`);
  const pids = (await readdir(proc)).filter((name) => /^[0-9]+$/.test(name));
  // Every process's name, in one job on the thread pool: thousands of reads on a host with 1,000
  // containers (~30 ms quiet, 160 ms under load).
  const comms = await readProcFiles(pids.map((pid) => `${proc}/${pid}/comm`), MAX_COMM_BYTES);
  const dockerds: Dockerd[] = [];
  const proxies: string[] = [];
  for (const [i, pid] of pids.entries()) {
    if (comms[i] === 'docker-proxy\n') proxies.push(pid);
    else if (comms[i] === 'dockerd\n' && linkOrNull(`${proc}/${pid}/ns/net`) === ownNet) {
      const started = startTime(proc, pid);
      if (started !== null) dockerds.push({ pid, started });
    }
  }
  return { dockerds, engine: await engineDockerd(proc, engineSocket, dockerds), proxies, ownNet };
}

/**
 * docker-proxy's listeners: the watched engine's dockerd's children when it is found, else every
 * docker-proxy of this namespace (one namespace link and one command line each: ~20 ms at 150
 * published ports here).
 */
async function listeners(proc: string, { engine, proxies, ownNet }: Found): Promise<ProxyListener[]> {
  const fromEngine = engine === null ? null : await childrenRead(proc, [engine]);
  if (fromEngine !== null) return fromEngine;
  return proxies.filter((pid) => linkOrNull(`${proc}/${pid}/ns/net`) === ownNet).flatMap((pid) => listenerOf(proc, pid) ?? []);
}

/**
 * The dockerd among `dockerds` holding a listening socket bound at `engineSocket` (compared after
 * resolving symlinks: `/var/run` is `/run`), found through `/proc/net/unix` (this namespace's unix
 * sockets, by inode) and each dockerd's open descriptors. Null when none does.
 */
async function engineDockerd(proc: string, engineSocket: string, dockerds: readonly Dockerd[]): Promise<Dockerd | null> {
  if (dockerds.length === 0) return null;
  const resolved = (path: string): string => {
    try {
      return realpathSync(path);
    } catch {
      return path;
    }
  };
  const wanted = resolved(engineSocket);
  // A bound path's last component is the socket itself, never a symlink, so only a path with the same
  // last component can be the engine's: the others (a containerd shim's socket per container) are not
  // resolved one by one.
  const name = wanted.slice(wanted.lastIndexOf('/'));
  const inodes = new Set<string>();
  // Thousands of lines with 1,000 containers (a containerd shim's socket each): read on the thread pool.
  const [unix] = await readProcFiles([`${proc}/net/unix`]);
  for (const line of (unix ?? '').split('\n').slice(1)) {
    if (!line.endsWith(name)) continue;
    // Num RefCount Protocol Flags Type St Inode Path (which may hold spaces); 00010000: listening.
    const [, flags, inode, path] = /^\s*\S+ \S+ \S+ (\S+) \S+ \S+ (\d+) (.+)$/.exec(line) ?? [];
    if (flags !== '00010000' || inode === undefined || path === undefined) continue;
    if (path === wanted || resolved(path) === wanted) inodes.add(`socket:[${inode}]`);
  }
  if (inodes.size === 0) return null;
  return dockerds.find((dockerd) => holdsAny(proc, dockerd.pid, inodes)) ?? null;
}

/**
 * Whether process `pid` holds one of `links` (`socket:[inode]`) among its open descriptors, read in the
 * kernel's order (lowest first: dockerd opens its listeners at start) until one is found. Not
 * `readdirSync`, which lists all of them first, sorted as text: dockerd holds thousands with 1,000
 * containers, and fd 7 came ~5,700th (~30 ms of readlinks at each full read).
 */
function holdsAny(proc: string, pid: string, links: ReadonlySet<string>): boolean {
  let dir: Dir;
  try {
    dir = opendirSync(`${proc}/${pid}/fd`);
  } catch {
    return false; // gone meanwhile
  }
  try {
    for (let entry = dir.readSync(); entry !== null; entry = dir.readSync()) {
      if (links.has(linkOrNull(`${proc}/${pid}/fd/${entry.name}`) ?? '')) return true;
    }
    return false;
  } catch {
    return false; // gone while read
  } finally {
    dir.closeSync();
  }
}

/** The docker-proxy children of `dockerds`; null when one of them is gone (a full read is due). */
async function childrenRead(proc: string, dockerds: readonly Dockerd[]): Promise<ProxyListener[] | null> {
  const listeners: ProxyListener[] = [];
  for (const { pid, started } of dockerds) {
    if (startTime(proc, pid) !== started) return null;
    const children = readdirSync(`${proc}/${pid}/task`)
      .flatMap((tid) => (readProcFile(`${proc}/${pid}/task/${tid}/children`) ?? '').split(' ').filter((child) => child !== ''));
    for (const child of children) {
      const listener = readProcFile(`${proc}/${child}/comm`) === 'docker-proxy\n' ? listenerOf(proc, child) : null;
      if (listener) listeners.push(listener);
    }
  }
  return listeners;
}

/** The listener of docker-proxy process `pid`; null when gone meanwhile or its arguments are not a listener's. */
function listenerOf(proc: string, pid: string): ProxyListener | null {
  const cmdline = readProcFile(`${proc}/${pid}/cmdline`);
  return cmdline === null ? null : parseArguments(cmdline.split('\0'));
}

export function linkOrNull(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null; // gone meanwhile, or not ours to read
  }
}

/** Field 22 of `/proc/<pid>/stat`; null when it is gone. */
function startTime(proc: string, pid: string): string | null {
  const stat = readProcStat(proc, pid);
  return stat === null ? null : (stat[19] ?? '');
}

/** docker-proxy's own flags (`-flag value`); null when one is missing or out of range. */
export function parseArguments(argv: readonly string[]): ProxyListener | null {
  const value = (flag: (typeof FLAGS)[number]): string | undefined => {
    const at = argv.indexOf(flag);
    return at < 0 ? undefined : argv[at + 1];
  };
  const proto = PROTOCOLS.find((p) => p === value('-proto'));
  const hostIp = value('-host-ip');
  const hostPort = Number(value('-host-port'));
  if (proto === undefined || hostIp === undefined || !Number.isInteger(hostPort) || hostPort < 1 || hostPort > 65535) return null;
  return { proto, hostIp, hostPort };
}
