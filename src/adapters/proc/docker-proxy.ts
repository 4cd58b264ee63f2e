/**
 * The host ports Docker's userland proxy (docker-proxy, one process per published port and family)
 * serves in this network namespace. Docker's DNAT normally takes a published port's traffic past it;
 * when that DNAT is gone (an `nft flush ruleset` takes it until dockerd restarts) docker-proxy serves
 * the port on the input path, and a port not yet judged is then open to every source. The firewall
 * enforcer closes these ports until they are judged (FirewallEnforcer.repairDrift).
 *
 * Read from procfs: a process whose `comm` is docker-proxy in this process's network namespace (or a
 * child of its dockerd), its `-proto`, `-host-ip` and `-host-port` arguments. Anyone can name a
 * process docker-proxy: the worst a fake one does is close a port to every source until judged.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { PROTOCOLS, type Protocol } from '../../domain/facts.js';

export interface ProxyListener {
  readonly proto: Protocol;
  /** As docker-proxy got it: `0.0.0.0`, `::` or one address. */
  readonly hostIp: string;
  readonly hostPort: number;
}

const FLAGS = ['-proto', '-host-ip', '-host-port'] as const;

/**
 * Reads docker-proxy's listeners fast enough for a repair to wait for them: procfs holds hundreds of
 * processes (a full read of every `comm` took 26–260 ms on a loaded 2-core machine), docker-proxy's
 * parent is dockerd, and dockerd's children are listed in `/proc/<pid>/task/<tid>/children`. So a full
 * read finds this namespace's dockerd processes once (`prime`, off the repair's path), and every
 * read after it lists their children only. A dockerd gone (a restart), or none found, means a full
 * read again. A second dockerd started in the namespace beside one remembered is not seen.
 */
export interface DockerProxyReader {
  read(): Promise<ProxyListener[]>;
  /** Does the full read now, so the first `read` is a fast one. */
  prime(): void;
}

export function dockerProxyReader(proc = '/proc'): DockerProxyReader {
  let dockerds: Promise<Dockerd[]> = Promise.resolve([]);
  const full = (): Promise<ProxyListener[]> => {
    const result = fullRead(proc);
    dockerds = result.then((r) => r.dockerds, () => []);
    return result.then((r) => r.listeners);
  };
  return {
    prime: () => void full().catch(() => {}),
    async read() {
      const known = await dockerds;
      const fast = known.length === 0 ? null : await childrenRead(proc, known).catch(() => null);
      return fast ?? full();
    },
  };
}

/** A dockerd process: its pid and start time (a pid reused by another process is not it). */
interface Dockerd {
  readonly pid: string;
  readonly started: string;
}

/** Every process: this namespace's docker-proxy listeners and dockerd processes. */
async function fullRead(proc: string): Promise<{ listeners: ProxyListener[]; dockerds: Dockerd[] }> {
  const ownNet = await readlink(`${proc}/self/ns/net`);
  const pids = (await readdir(proc)).filter((name) => /^[0-9]+$/.test(name));
  const listeners: ProxyListener[] = [];
  const dockerds: Dockerd[] = [];
  await Promise.all(pids.map(async (pid) => {
    try {
      const comm = await readFile(`${proc}/${pid}/comm`, 'utf8');
      if (comm !== 'docker-proxy\n' && comm !== 'dockerd\n') return;
      if ((await readlink(`${proc}/${pid}/ns/net`)) !== ownNet) return;
      if (comm === 'dockerd\n') dockerds.push({ pid, started: await startTime(proc, pid) });
      else {
        const listener = parseArguments((await readFile(`${proc}/${pid}/cmdline`, 'utf8')).split('\0'));
        if (listener) listeners.push(listener);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }));
  return { listeners, dockerds };
}

/** The docker-proxy children of `dockerds`; null when one of them is gone (a full read is due). */
async function childrenRead(proc: string, dockerds: readonly Dockerd[]): Promise<ProxyListener[] | null> {
  const listeners: ProxyListener[] = [];
  for (const { pid, started } of dockerds) {
    if ((await startTime(proc, pid).catch(() => null)) !== started) return null;
    const children = (await Promise.all((await readdir(`${proc}/${pid}/task`)).map((tid) => readFile(`${proc}/${pid}/task/${tid}/children`, 'utf8').catch(() => ''))))
      .flatMap((list) => list.split(' ').filter((child) => child !== ''));
    const found = await Promise.all(children.map(async (child) => {
      try {
        if ((await readFile(`${proc}/${child}/comm`, 'utf8')) !== 'docker-proxy\n') return null;
        return parseArguments((await readFile(`${proc}/${child}/cmdline`, 'utf8')).split('\0'));
      } catch {
        return null; // ended meanwhile
      }
    }));
    listeners.push(...found.filter((listener) => listener !== null));
  }
  return listeners;
}

/** Field 22 of `/proc/<pid>/stat`, counted after the command name (which may hold spaces and parentheses). */
async function startTime(proc: string, pid: string): Promise<string> {
  const stat = await readFile(`${proc}/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
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
