/**
 * Finds a container's bridge ports: the host ends of the veths in its network namespace. Inside the
 * namespace, `ip -j link` gives each interface's MAC and its peer's host ifindex (`link_index`); on the
 * host, that ifindex names a veth enslaved to a bridge. Commands run by argument array, never a shell.
 */
import { execFile } from 'node:child_process';
import { parseMac } from '../../domain/bridge/ports.js';

const TIMEOUT_MS = 10_000;

interface Link {
  readonly ifindex?: unknown;
  readonly ifname?: unknown;
  readonly address?: unknown;
  readonly link_index?: unknown;
  readonly link_netnsid?: unknown;
  readonly master?: unknown;
  readonly linkinfo?: { readonly info_kind?: unknown; readonly info_slave_kind?: unknown };
}

/** Container MAC → host veth name, for the container whose init process is `pid` (> 0). */
export async function bridgeVeths(pid: number): Promise<Map<string, string>> {
  if (!Number.isInteger(pid) || pid <= 0) throw new TypeError(`invalid pid ${pid}`);
  const [inside, host] = await Promise.all([
    links('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show']),
    links('ip', ['-j', '-d', 'link', 'show']),
  ]);
  const hostPorts = new Map<number, { readonly ifname: string; readonly peer: unknown }>();
  for (const l of host) {
    if (l.linkinfo?.info_kind === 'veth' && l.linkinfo.info_slave_kind === 'bridge' && typeof l.ifindex === 'number' && typeof l.ifname === 'string') {
      hostPorts.set(l.ifindex, { ifname: l.ifname, peer: l.link_index });
    }
  }
  const veths = new Map<string, string>();
  for (const l of inside) {
    // Both ends must name each other: an ifindex alone could be another namespace's.
    const mac = typeof l.address === 'string' ? parseMac(l.address) : null;
    const port = typeof l.link_index === 'number' && l.link_netnsid !== undefined ? hostPorts.get(l.link_index) : undefined;
    if (mac && port && port.peer === l.ifindex) veths.set(mac, port.ifname);
  }
  return veths;
}

function links(file: string, args: readonly string[]): Promise<Link[]> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout: TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || error.message}`));
      try {
        const parsed = JSON.parse(stdout) as unknown;
        resolve(Array.isArray(parsed) ? (parsed as Link[]) : []);
      } catch {
        reject(new Error(`${file}: printed invalid JSON`));
      }
    });
  });
}
