/**
 * Bridge isolation (README "Bridge isolation"): which bridge ports are filtered and what each may
 * send. Pure. A port is a container's host-side veth; it may send frames only with the container's
 * own MAC, its own IPv4/IPv6 source addresses (IPv6 link-local included), and ARP/ND claiming only those.
 */
import type { ContainerFacts } from '../facts.js';
import { parseAddress, type IpAddress } from '../firewall/plan.js';
import type { NetworkPolicy } from '../policy/model.js';

export interface BridgePort {
  /** The host-side veth, as the bridge sees it. */
  readonly ifname: string;
  readonly containerId: string;
  /** Canonical: six lower-case hex pairs joined by `:`. */
  readonly mac: string;
  readonly ipv4: readonly IpAddress[];
  /** The container's own addresses and the link-local one its kernel derives from the MAC. */
  readonly ipv6: readonly IpAddress[];
}

export class BridgeInputError extends Error {
  override readonly name = 'BridgeInputError';
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Canonical MAC, or null when `text` is not one; multicast and all-zero MACs are never a port's own. */
export function parseMac(text: string): string | null {
  const mac = text.toLowerCase();
  if (!MAC.test(mac) || mac === '00:00:00:00:00:00' || (parseInt(mac.slice(0, 2), 16) & 1) === 1) return null;
  return mac;
}

/** fe80::/64 with the modified EUI-64 of `mac` (RFC 4291 appendix A), what Linux assigns by default. */
export function linkLocalOf(mac: string): IpAddress {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  const words = [(b[0]! ^ 2) << 8 | b[1]!, b[2]! << 8 | 0xff, 0xfe << 8 | b[3]!, b[4]! << 8 | b[5]!];
  return parseAddress(`fe80::${words.map((w) => w.toString(16)).join(':')}`)!;
}

/** Whether bridge isolation looks at the container at all (its veths are read only then). */
export function isolationLooksAt(facts: ContainerFacts, policy: NetworkPolicy): boolean {
  return facts.state.running && policy.antiSpoofing && facts.networks.some((n) => n.mac !== '');
}

/**
 * The filtered ports of one container: each attachment to a network not excepted whose veth was
 * found on a bridge (`veths`: container MAC → host veth, every bridge port of the container). None
 * unless it runs and the policy filters.
 */
export function planPorts(facts: ContainerFacts, policy: NetworkPolicy, veths: ReadonlyMap<string, string>): BridgePort[] {
  if (!facts.state.running || !policy.antiSpoofing) return [];
  // A bridge port whose MAC no attachment has was changed inside the container (NET_ADMIN): it would
  // match no network and go unfiltered without a word.
  const attached = new Set(facts.networks.map((n) => parseMac(n.mac)));
  if ([...veths.keys()].some((mac) => !attached.has(mac))) throw new BridgeInputError(`container ${facts.id}: a bridge port carries a MAC none of its networks has`);
  const ports: BridgePort[] = [];
  for (const net of facts.networks) {
    if (policy.exceptions.includes(net.name) || net.mac === '') continue;
    const mac = parseMac(net.mac);
    if (!mac) throw new BridgeInputError(`container ${facts.id}: unusable MAC address`);
    const ifname = veths.get(mac);
    if (ifname === undefined) continue; // not on a bridge (macvlan, ipvlan, none)
    const own = (text: string, family: 4 | 6): IpAddress[] => {
      if (text === '') return [];
      const addr = parseAddress(text);
      if (addr?.family !== family) throw new BridgeInputError(`container ${facts.id}: unusable IPv${family} address`);
      return [addr];
    };
    const linkLocal = linkLocalOf(mac);
    const ipv6 = own(net.ipv6, 6).filter((a) => a.text !== linkLocal.text);
    ports.push({ ifname, containerId: facts.id, mac, ipv4: own(net.ipv4, 4), ipv6: [...ipv6, linkLocal] });
  }
  return ports;
}
