/**
 * Renders the bridge isolation table (`bridge dockwarden_bridge`) as `nft -f` text. Pure. A constant
 * set of rules; every filtered port is only set elements, so a container start or stop is one small
 * element transaction. Every value is re-validated (interface names, MACs, addresses).
 */
import { parseMac, type BridgePort } from '../../domain/bridge/ports.js';
import { address, ifname, unsafe } from '../firewall/safe-values.js';

export const BRIDGE_TABLE = 'bridge dockwarden_bridge';

const SETS = {
  ports: 'type ifname',
  // Per-port drop counts, read for alerts: looked up only on the drop path, so it counts drops alone.
  drops: 'type ifname; counter',
  // The same per reason (SPOOFING_REASONS), each looked up only on its own reason's path.
  count_mac: 'type ifname; counter',
  count_vlan: 'type ifname; counter',
  count_router: 'type ifname; counter',
  count_arp: 'type ifname; counter',
  count_ipv4: 'type ifname; counter',
  count_ipv6: 'type ifname; counter',
  count_nd: 'type ifname; counter',
  macs: 'type ifname . ether_addr',
  arps: 'type ifname . ether_addr . ipv4_addr',
  addrs4: 'type ifname . ipv4_addr',
  addrs6: 'type ifname . ipv6_addr',
  // nft 1.0.6 has no ND target field: the target address is transport bytes 8-23, as a 128-bit integer.
  targets: 'typeof iifname . @th,64,128',
} as const;
type SetName = keyof typeof SETS;
const SET_NAMES = Object.keys(SETS) as SetName[];

/** Why a frame is spoofed: each has its own per-port counter set (`count_<reason>`) and chain (`spoofed_<reason>`). */
export const SPOOFING_REASONS = ['mac', 'vlan', 'router', 'arp', 'ipv4', 'ipv6', 'nd'] as const;
export type SpoofingReason = (typeof SPOOFING_REASONS)[number];

// One base chain on `prerouting` at priority -200 (bridge `filter`): every frame a port sends is
// judged once, before the bridge decides where it goes, so it covers frames to other ports and to the
// host (its ARP cache, its sockets) alike, and a flooded frame is counted once. br_netfilter hooks
// this family at priority 0, after us. Each reason has its own counter, and its own per-port counter
// (a lookup in a rule of its own, so a port missing from a counter set can never let a frame pass);
// `spoofed` counts per port, then drops — or in audit mode accepts, so nothing is blocked.
function chains(audit: boolean): string {
  return [
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority -200; policy accept;',
    '\t\tiifname @ports jump check',
    '\t}',
    '\tchain check {',
    '\t\tiifname . ether saddr != @macs counter jump spoofed_mac',
    // Tagged frames would carry ARP or IP past the checks below, which match untagged ethertypes only.
    '\t\tether type { 8021q, 8021ad } counter jump spoofed_vlan',
    // A container is no router and no DHCP server to its neighbours: a router advertisement or a
    // DHCP/DHCPv6 server reply from it would hand them a rogue gateway, DNS server or address.
    '\t\ticmpv6 type nd-router-advert counter jump spoofed_router',
    '\t\tudp sport 67 udp dport 68 counter jump spoofed_router',
    '\t\tudp sport 547 udp dport 546 counter jump spoofed_router',
    '\t\tether type arp iifname . arp saddr ether . arp saddr ip != @arps counter jump spoofed_arp',
    // A DHCP client has no address yet.
    '\t\tip saddr 0.0.0.0 udp sport 68 udp dport 67 return',
    '\t\tether type ip iifname . ip saddr != @addrs4 counter jump spoofed_ipv4',
    // Duplicate address detection and MLD reports are sent from `::`.
    '\t\tip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } return',
    '\t\tether type ip6 iifname . ip6 saddr != @addrs6 counter jump spoofed_ipv6',
    '\t\ticmpv6 type nd-neighbor-advert iifname . @th,64,128 != @targets counter jump spoofed_nd',
    '\t}',
    ...SPOOFING_REASONS.flatMap((reason) => [`\tchain spoofed_${reason} {`, `\t\tiifname @count_${reason}`, '\t\tgoto spoofed', '\t}']),
    '\tchain spoofed {',
    '\t\tiifname @drops',
    audit ? '\t\taccept' : '\t\tdrop',
    '\t}',
  ].join('\n');
}

/** The whole table, replaced atomically: create-if-missing, delete, recreate, in one transaction. */
export function renderBridgeTable(ports: readonly BridgePort[], audit = false): string {
  const sets = renderSets(ports);
  const blocks = SET_NAMES.map((name) => {
    const lines = [`\tset ${name} {`, ...SETS[name].split('; ').map((line) => `\t\t${line}`)];
    if (sets[name].length > 0) lines.push(`\t\telements = { ${sets[name].join(', ')} }`);
    return [...lines, '\t}'].join('\n');
  });
  return [`table ${BRIDGE_TABLE} {}`, `delete table ${BRIDGE_TABLE}`, `table ${BRIDGE_TABLE} {`, ...blocks, chains(audit), '}', ''].join('\n');
}

export function renderBridgeRemoval(): string {
  return `table ${BRIDGE_TABLE} {}\ndelete table ${BRIDGE_TABLE}\n`;
}

/** One transaction: the old ports' elements out, the new ones in. Empty when both are empty. */
export function renderBridgeChanges(remove: readonly BridgePort[], add: readonly BridgePort[]): string {
  const commands = (verb: 'add' | 'delete', ports: readonly BridgePort[]): string[] => {
    const sets = renderSets(ports);
    return SET_NAMES.filter((name) => sets[name].length > 0).map((name) => `${verb} element ${BRIDGE_TABLE} ${name} { ${sets[name].join(', ')} }`);
  };
  const lines = [...commands('delete', remove), ...commands('add', add)];
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Every element `ports` put in the table, as `SET a . b . c` (interface names unquoted): what the
 * kernel must hold, in the form `nftBridgeFilter().read()` reads it back, for drift checks.
 */
export function bridgeElements(ports: readonly BridgePort[]): string[] {
  const sets = renderSets(ports);
  return SET_NAMES.flatMap((name) => sets[name].map((element) => `${name} ${element.replaceAll('"', '')}`));
}

function renderSets(ports: readonly BridgePort[]): Record<SetName, string[]> {
  const sets = Object.fromEntries(SET_NAMES.map((name) => [name, [] as string[]])) as Record<SetName, string[]>;
  for (const port of ports) {
    const name = `"${ifname(port.ifname)}"`;
    const mac = parseMac(port.mac) === port.mac ? port.mac : unsafe('MAC address', port.mac);
    sets.ports.push(name);
    sets.drops.push(name);
    for (const reason of SPOOFING_REASONS) sets[`count_${reason}`].push(name);
    sets.macs.push(`${name} . ${mac}`);
    // An ARP probe (RFC 5227) claims no address: sender IP 0.0.0.0.
    sets.arps.push(`${name} . ${mac} . 0.0.0.0`);
    for (const a of port.ipv4) {
      const ip = address(a, 4);
      sets.arps.push(`${name} . ${mac} . ${ip}`);
      sets.addrs4.push(`${name} . ${ip}`);
    }
    for (const a of port.ipv6) {
      const ip = address(a, 6);
      sets.addrs6.push(`${name} . ${ip}`);
      sets.targets.push(`${name} . 0x${ipv6Hex(ip)}`);
    }
  }
  return sets;
}

/** The 32 hex digits of a (validated) IPv6 address. */
function ipv6Hex(text: string): string {
  if (text.includes('.')) unsafe('IPv6 address with an embedded IPv4 address', text);
  const [head, tail = ''] = text.split('::') as [string, string?];
  const groups = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const left = groups(head);
  const right = groups(text.includes('::') ? tail : '');
  const middle = Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...middle, ...right].map((g) => g.padStart(4, '0')).join('');
}
