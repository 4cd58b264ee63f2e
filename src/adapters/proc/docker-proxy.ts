/**
 * The host ports Docker's userland proxy (docker-proxy, one process per published port and family)
 * serves in this network namespace. Docker's DNAT normally takes a published port's traffic past it;
 * when that DNAT is gone (an `nft flush ruleset` takes it until dockerd restarts) docker-proxy serves
 * the port on the input path, and a port not yet judged is then open to every source. The firewall
 * enforcer closes these ports until they are judged (FirewallEnforcer.repairDrift).
 *
 * Read from procfs: a process whose `comm` is docker-proxy in this process's network namespace, its
 * `-proto`, `-host-ip` and `-host-port` arguments. Anyone can name a process docker-proxy: the worst a
 * fake one does is close a port to every source until the containers are judged.
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

/** Every docker-proxy listener of this network namespace; processes that end while read are skipped. */
export async function dockerProxyListeners(proc = '/proc'): Promise<ProxyListener[]> {
  const ownNet = await readlink(`${proc}/self/ns/net`);
  const pids = (await readdir(proc)).filter((name) => /^[0-9]+$/.test(name));
  const found = await Promise.all(pids.map(async (pid): Promise<ProxyListener | null> => {
    try {
      if ((await readFile(`${proc}/${pid}/comm`, 'utf8')) !== 'docker-proxy\n') return null;
      if ((await readlink(`${proc}/${pid}/ns/net`)) !== ownNet) return null;
      return parseArguments((await readFile(`${proc}/${pid}/cmdline`, 'utf8')).split('\0'));
    } catch {
      return null; // gone meanwhile, or not ours to read
    }
  }));
  return found.filter((listener) => listener !== null);
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
