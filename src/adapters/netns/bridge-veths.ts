/**
 * Finds a container's bridge ports: the host ends of the veths in its network namespace, without
 * entering it (that needs CAP_SYS_ADMIN and ptrace access, which the unit does not grant). On the
 * host, `ip -j -d link` gives each bridge-enslaved veth its peer's ifindex (`link_index`) and the id
 * the host knows the peer's namespace by (`link_netnsid`); the native addon (native/netns_links.c)
 * gives the id of the container's namespace, by pid, and that namespace's links with their MACs and
 * peer ifindexes, over rtnetlink with CAP_NET_ADMIN alone. Commands run by argument array, never a shell.
 */
import { loadAddon } from '../native-addon.js';
import { parseMac } from '../../domain/bridge/ports.js';
import { isToolError, runTool } from '../firewall/run-tool.js';
import { freshRead } from '../fresh-read.js';

const TIMEOUT_MS = 10_000;

interface Link {
  readonly ifindex?: unknown;
  readonly ifname?: unknown;
  readonly link_index?: unknown;
  readonly link_netnsid?: unknown;
  readonly linkinfo?: { readonly info_kind?: unknown; readonly info_slave_kind?: unknown };
}

/** A link of another namespace, as native/netns_links.c reports it. */
interface NetnsLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly address: string | null;
  /** The peer's ifindex, in the namespace `linkNetnsid` names (relative to the host's). */
  readonly link: number | null;
  readonly linkNetnsid: number | null;
}

interface Addon {
  /** nsid -1: the host has no id for the namespace (no host link reaches it), links empty. */
  netnsLinks(pid: number): { readonly nsid: number; readonly links: readonly NetnsLink[] };
}

let loaded: Addon | undefined;
const addon = (): Addon => (loaded ??= loadAddon<Addon>('dw_netns'));

/** Container MAC → host veth name, for the container whose init process is `pid` (> 0). */
export async function bridgeVeths(pid: number): Promise<Map<string, string>> {
  if (!Number.isInteger(pid) || pid <= 0) throw new TypeError(`invalid pid ${pid}`);
  // The host's dump first: listing a veth gives its peer's namespace a host id if it had none.
  const host = await hostLinks();
  const inside = addon().netnsLinks(pid);
  const hostPorts = new Map<number, { readonly ifname: string; readonly peer: unknown; readonly peerNetns: unknown }>();
  for (const l of host) {
    if (l.linkinfo?.info_kind === 'veth' && l.linkinfo.info_slave_kind === 'bridge' && typeof l.ifindex === 'number' && typeof l.ifname === 'string') {
      hostPorts.set(l.ifindex, { ifname: l.ifname, peer: l.link_index, peerNetns: l.link_netnsid });
    }
  }
  const veths = new Map<string, string>();
  for (const l of inside.links) {
    // Both ends must name each other, and the host end the container's namespace: an ifindex alone
    // could be another namespace's, and a wrong veth would filter the wrong container.
    const mac = l.address === null ? null : parseMac(l.address);
    const port = l.link !== null && l.linkNetnsid !== null ? hostPorts.get(l.link) : undefined;
    if (mac && port && port.peer === l.ifindex && port.peerNetns === inside.nsid) veths.set(mac, port.ifname);
  }
  return veths;
}

/** The host's links (src/adapters/fresh-read.ts): a dump is a fork of the daemon, ~3 ms of its event loop. */
const hostLinks = freshRead(() => links('ip', ['-j', '-d', 'link', 'show']));

async function links(file: string, args: readonly string[]): Promise<Link[]> {
  let stdout: string;
  try {
    stdout = await runTool([file, ...args], '', undefined, TIMEOUT_MS);
  } catch (failure) {
    if (!isToolError(failure)) throw failure;
    throw new Error(`${file} ${args.join(' ')}: ${failure.stderr.trim() || failure.message}`, { cause: failure });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    throw new Error(`${file}: printed invalid JSON`);
  }
  return Array.isArray(parsed) ? (parsed as Link[]) : [];
}
