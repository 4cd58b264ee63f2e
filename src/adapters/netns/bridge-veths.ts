/**
 * Finds a container's bridge ports: the host ends of the veths in its network namespace, without
 * entering it (that needs CAP_SYS_ADMIN and ptrace access, which the unit does not grant). The native
 * addon (native/netns_links.c), over rtnetlink with CAP_NET_ADMIN alone, gives the id the host knows
 * the container's namespace by (by pid), that namespace's links with their MACs and peer ifindexes,
 * and the host's link of one ifindex: each container link's peer, asked for alone (a dump of the
 * host's links cost a fork of `ip` and its JSON, and grows with every container on a bridge).
 */
import { loadAddon } from '../native-addon.js';
import { parseMac } from '../../domain/bridge/ports.js';

/** A link of another namespace, as native/netns_links.c reports it. */
interface NetnsLink {
  readonly ifindex: number;
  readonly ifname: string;
  readonly address: string | null;
  /** The peer's ifindex, in the namespace `linkNetnsid` names (relative to the host's). */
  readonly link: number | null;
  readonly linkNetnsid: number | null;
}

/** A host veth enslaved to a bridge, as native/netns_links.c reports it. */
interface HostBridgePort {
  readonly ifname: string;
  /** Its peer's ifindex, in the namespace the host knows as `linkNetnsid`. */
  readonly link: number | null;
  readonly linkNetnsid: number | null;
}

interface Addon {
  /** nsid -1: the host has no id for the namespace and none could be given, links empty. */
  netnsLinks(pid: number): { readonly nsid: number; readonly links: readonly NetnsLink[] };
  /** The host's link of that ifindex when it is a veth enslaved to a bridge; else null. */
  hostBridgePort(ifindex: number): HostBridgePort | null;
}

let loaded: Addon | undefined;
const addon = (): Addon => (loaded ??= loadAddon<Addon>('dw_netns'));

/** Container MAC → host veth name, for the container whose init process is `pid` (> 0). */
export async function bridgeVeths(pid: number): Promise<Map<string, string>> {
  if (!Number.isInteger(pid) || pid <= 0) throw new TypeError(`invalid pid ${pid}`);
  const inside = addon().netnsLinks(pid);
  const veths = new Map<string, string>();
  for (const l of inside.links) {
    // Both ends must name each other, and the host end the container's namespace: an ifindex alone
    // could be another namespace's, and a wrong veth would filter the wrong container.
    const mac = l.address === null ? null : parseMac(l.address);
    const port = l.link !== null && l.linkNetnsid !== null ? addon().hostBridgePort(l.link) : null;
    if (mac && port && port.link === l.ifindex && port.linkNetnsid === inside.nsid) veths.set(mac, port.ifname);
  }
  return veths;
}
