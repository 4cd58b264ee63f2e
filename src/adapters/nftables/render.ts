/**
 * Renders a `FirewallPlan` as `nft -f` text (docs/architecture.md "The firewall and bridge tables"). Pure. Every value is re-validated here, so a
 * plan built by hand or from hostile input can only fail, never inject: numbers in range, canonical
 * addresses, the protocol enum, interface names of a fixed alphabet. No name, label or image ever
 * reaches the script. Each published port is its own element, so no port ranges are needed.
 */
import type {
  AllowElement, ElementDiff, EndpointElement, EngineCgroup, Family, FirewallElements, FirewallPlan, PortElement,
} from '../../domain/firewall/plan.js';
import { PROTOCOLS } from '../../domain/facts.js';
import { address, cgroupPath, cidr, family, ifname, port, proto, unsafe } from '../firewall/safe-values.js';

export { UnsafeValueError, isUnsafeValueError } from '../firewall/safe-values.js';

export const TABLE = 'inet dockwarden';
/**
 * The guard: the same sets and rules in a second table, owned (`flags owner`) by the daemon's `nft -i`
 * process (nft-session.ts), so that `nft flush ruleset` cannot take it while the daemon runs; it
 * goes with that process. A drop in either table drops: both hook in at the same places.
 */
export const GUARD_TABLE = 'inet dockwarden_guard';

/**
 * Allowances of source blocks need concatenated interval sets (the kernel's pipapo), whose every change
 * rebuilds the set: one set of them made a delete cost time in proportion to the set (260 ms at 10,000
 * containers) and a load of n elements about n² (12 s). They are spread over this many sets by host
 * port (`th dport & (ALLOW_SHARDS - 1)`, one verdict-map lookup to the shard's chain), so each holds
 * 1/64 of them. Everything exact lives in plain hash sets: the ports, split into single-address
 * (`ports*`) and wildcard (`wildcard*`) bindings, and ports open to every source (`open*`,
 * `openwildcard*`), which need no source block. Measured in `scripts/bench/scale.ts`.
 */
export const ALLOW_SHARDS = 64;

/** Allowance shard of a host port, and its set's (and chain's) name. */
export const allowShard = (hostPort: number): number => hostPort & (ALLOW_SHARDS - 1);
export const allowSetName = (family: Family, shard: number): string => `allow${family}_${String(shard).padStart(2, '0')}`;

const ALLOW_TYPES: Readonly<Record<Family, string>> = {
  4: 'ipv4_addr . inet_proto . inet_service . ipv4_addr',
  6: 'ipv6_addr . inet_proto . inet_service . ipv6_addr',
};

/** The sets other than the allowance shards; all plain hash sets. */
export const SET_TYPES = {
  /** Published ports bound to one host address. */
  ports4: 'ipv4_addr . inet_proto . inet_service',
  ports6: 'ipv6_addr . inet_proto . inet_service',
  /** Published ports bound to every address of the family (0.0.0.0, ::): the common case. */
  wildcard4: 'inet_proto . inet_service',
  wildcard6: 'inet_proto . inet_service',
  /** Published ports (as in `ports*` and `wildcard*`) that every source may reach. */
  open4: 'ipv4_addr . inet_proto . inet_service',
  open6: 'ipv6_addr . inet_proto . inet_service',
  openwildcard4: 'inet_proto . inet_service',
  openwildcard6: 'inet_proto . inet_service',
  /** Judged container endpoints: address, protocol, container port, host port. */
  endpoints4: 'ipv4_addr . inet_proto . inet_service . inet_service',
  endpoints6: 'ipv6_addr . inet_proto . inet_service . inet_service',
  bridges: 'ifname',
  routed4: 'ifname',
  routed6: 'ifname',
  otherBridges: 'ifname',
} as const;
export type SetName = keyof typeof SET_TYPES;
const SET_NAMES = Object.keys(SET_TYPES) as SetName[];
const SHARDS = Array.from({ length: ALLOW_SHARDS }, (_, i) => i);
const FAMILIES: readonly Family[] = [4, 6];

/**
 * Audit mode's would-be drops at published ports, one element (with its counter) per source, host
 * address, protocol and port; filled by the packets themselves, so bounded in size and forgotten an
 * hour after a key's last new connection. Not part of the plan: their elements are the kernel's.
 */
export const AUDIT_SETS = {
  audit4: 'ipv4_addr . ipv4_addr . inet_proto . inet_service',
  audit6: 'ipv6_addr . ipv6_addr . inet_proto . inet_service',
} as const;
export const AUDIT_SET_SIZE = 65_536;

/** Set name → elements rendered, for the sets that have any. */
type RenderedSets = Map<string, string[]>;

/**
 * The whole table, replaced atomically: create-if-missing, delete, recreate, in one transaction.
 * `guard`: the guard table, owned by the socket that writes it (only an owner may delete it).
 */
export function renderTable(plan: FirewallPlan, guard = false): string {
  return wholeTable(guard ? GUARD_TABLE : TABLE, guard, tableBody(plan));
}

/** The table, then the guard (the same body, rendered once), as one script: what every replace with a guard writes. */
export function renderTableAndGuard(plan: FirewallPlan): string {
  const body = tableBody(plan);
  return wholeTable(TABLE, false, body) + wholeTable(GUARD_TABLE, true, body);
}

function wholeTable(table: string, guard: boolean, body: string): string {
  return [`table ${table} {${guard ? ' flags owner; ' : ''}}`, `delete table ${table}`, `table ${table} {`, ...(guard ? ['\tflags owner;'] : []), body, '}', ''].join('\n');
}

/** Sets, their elements and chains: everything inside the table's braces but its flags. */
function tableBody(plan: FirewallPlan): string {
  const sets = renderSets(plan);
  sets.set('routed4', plan.routed4.map(quotedIfname));
  sets.set('routed6', plan.routed6.map(quotedIfname));
  sets.set('otherBridges', plan.otherBridges.map(quotedIfname));
  const setBlock = (name: string, type: string, interval: boolean): string => {
    const lines = [`\tset ${name} {`, `\t\ttype ${type}`];
    if (interval) lines.push('\t\tflags interval');
    const elements = sets.get(name) ?? [];
    if (elements.length > 0) lines.push('\t\telements = {', ...elementLines(elements, '\t\t\t'), '\t\t}');
    return [...lines, '\t}'].join('\n');
  };
  const auditBlocks = Object.entries(AUDIT_SETS).map(([name, type]) =>
    [`\tset ${name} {`, `\t\ttype ${type}`, `\t\tsize ${AUDIT_SET_SIZE}`, '\t\tflags dynamic, timeout', '\t\ttimeout 1h', '\t\tcounter', '\t}'].join('\n'));
  return [
    ...SET_NAMES.map((name) => setBlock(name, SET_TYPES[name], false)),
    ...FAMILIES.flatMap((f) => SHARDS.map((i) => setBlock(allowSetName(f, i), ALLOW_TYPES[f], true))),
    ...auditBlocks,
    chains(plan.defaultDeny, plan.audit ?? false, plan.defaultDeny ? plan.engineCgroup : undefined),
  ].join('\n');
}

/** Takes the whole table out (`dockwarden firewall remove`); no error when it is not there. */
export function renderRemoval(): string {
  return `table ${TABLE} {}\ndelete table ${TABLE}\n`;
}

/**
 * One transaction: deletions first, so an element may be replaced by an overlapping one. Empty when
 * nothing changes. A deletion of an element the kernel lacks fails the whole transaction (drift).
 */
export function renderElementChanges(diff: ElementDiff, table = TABLE): string {
  const commands = (verb: 'add' | 'delete', elements: FirewallElements): string[] =>
    [...renderSets(elements)].map(([name, lines]) => [`${verb} element ${table} ${name} {`, ...elementLines(lines, '\t'), '}'].join('\n'));
  const lines = [...commands('delete', diff.delete), ...commands('add', diff.add)];
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

// Base chain priorities: prerouting −150 runs after conntrack (−200) and before DNAT (−100), so it sees
// the host port an admin sees in `docker ps`; traffic the host sends itself (on `lo`) is out of scope,
// as it is for Docker's own DNAT; it judges every packet, not only `ct state new`, so a
// narrowed policy cuts established connections at once.
// Forward: every new connection out to a bridge, Docker's by name (those seen, and `br-*`) or any
// bridge but the admin's own (`otherBridges`) by kind, so one Docker created while dockwarden was down or unseen is covered too. The
// baseline drops DNATed ones to container endpoints not yet judged: from the first packet, and while
// dockwarden is down. One not DNATed and not from a bridge was routed straight to a container address
// past every published-port rule (Docker before 28 lets it through): dropped unless its bridge is routed.
// Audit mode (`mode: audit`): every drop becomes a counted return, so nothing is blocked; at a published
// port each new connection (its first packet: conntrack ran before us) is also counted in @audit4/6 by
// source, for the daemon's "would have dropped" alerts. A full set counts no more keys, and passes all.
// `engineCgroup` (only with `defaultDeny`): a new connection past the judged ports' jumps (decide ends in
// a verdict) that goes to a local socket in dockerd's cgroup, which is docker-proxy's listener of a port
// not judged yet, is dropped. The kernel looks the socket up, so this holds from the port's first
// moment, and in the guard while a flush has taken Docker's DNAT, with no read of docker-proxy's list.
// Before DNAT (−150) a DNATed port's packet finds docker-proxy's listener at the host port too: the same
// port, the same answer as the forward path's baseline. nft resolves the path to the cgroup's id when it
// loads the rule: a cgroup made again (dockerd restarted by systemd) needs the rule loaded again.
function chains(defaultDeny: boolean, audit: boolean, engineCgroup: EngineCgroup | undefined): string {
  const drop = audit ? 'counter return' : 'counter drop';
  const cgroup = engineCgroup && cgroupPath(engineCgroup);
  return [
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority -150; policy accept;',
    '\t\tiif != "lo" fib daddr type local ip daddr . meta l4proto . th dport @ports4 jump decide4',
    '\t\tiif != "lo" fib daddr type local meta nfproto ipv4 meta l4proto . th dport @wildcard4 jump decide4',
    '\t\tiif != "lo" fib daddr type local ip6 daddr . meta l4proto . th dport @ports6 jump decide6',
    '\t\tiif != "lo" fib daddr type local meta nfproto ipv6 meta l4proto . th dport @wildcard6 jump decide6',
    ...(cgroup ? [`\t\tiif != "lo" fib daddr type local ct state new socket cgroupv2 level ${cgroup.level} "${cgroup.path}" ${drop}`] : []),
    '\t}',
    ...FAMILIES.flatMap((f) => [
      `\tchain decide${f} {`,
      `\t\t${ipOf(f)} daddr . meta l4proto . th dport @open${f} accept`,
      `\t\tmeta l4proto . th dport @openwildcard${f} accept`,
      `\t\tth dport & ${ALLOW_SHARDS - 1} vmap { ${SHARDS.map((i) => `${i} : jump ${allowSetName(f, i)}`).join(', ')} }`,
      ...(audit ? [`\t\tct state new update @audit${f} { ${ipOf(f)} saddr . ${ipOf(f)} daddr . meta l4proto . th dport }`] : []),
      `\t\t${drop}`,
      '\t}',
    ]),
    // An allowed packet is accepted: that ends only this base chain, which has nothing after the jump
    // to decide (a `return` from a shard's chain would come back to decide's drop, or in audit mode
    // count an allowed connection as a would-be drop).
    ...FAMILIES.flatMap((f) => SHARDS.map((i) =>
      `\tchain ${allowSetName(f, i)} {\n\t\t${ipOf(f)} daddr . meta l4proto . th dport . ${ipOf(f)} saddr @${allowSetName(f, i)} accept\n\t}`)),
    '\tchain forward {',
    '\t\ttype filter hook forward priority -1; policy accept;',
    '\t\tct state new oifname @bridges goto bridged',
    '\t\tct state new oifname "br-*" goto bridged',
    '\t\tct state new meta oifkind "bridge" oifname != @otherBridges goto bridged',
    '\t}',
    '\tchain bridged {',
    ...(defaultDeny ? ['\t\tct status dnat jump published'] : []),
    '\t\tct status dnat return',
    '\t\tiifname @bridges return',
    '\t\tiifname "br-*" return',
    '\t\tmeta iifkind "bridge" iifname != @otherBridges return',
    '\t\tmeta nfproto ipv4 oifname @routed4 return',
    '\t\tmeta nfproto ipv6 oifname @routed6 return',
    `\t\t${drop}`,
    '\t}',
    '\tchain published {',
    // The original destination port (the host port) too; nft 1.0 types `ct original proto-dst` only
    // once the protocol is known, hence one rule per protocol.
    ...PROTOCOLS.flatMap((p) => [
      `\t\tmeta l4proto ${p} ip daddr . meta l4proto . th dport . ct original proto-dst @endpoints4 return`,
      `\t\tmeta l4proto ${p} ip6 daddr . meta l4proto . th dport . ct original proto-dst @endpoints6 return`,
    ]),
    `\t\t${drop}`,
    '\t}',
  ].join('\n');
}

const ipOf = (f: Family): 'ip' | 'ip6' => (f === 4 ? 'ip' : 'ip6');

/** One element a line, so an error nft reports by line names the element. */
function elementLines(elements: readonly string[], indent: string): string[] {
  return elements.map((element, i) => `${indent}${element}${i < elements.length - 1 ? ',' : ''}`);
}

function renderSets(elements: FirewallElements): RenderedSets {
  const sets: RenderedSets = new Map();
  const push = (name: string, element: string): void => {
    const list = sets.get(name);
    if (list) list.push(element);
    else sets.set(name, [element]);
  };
  for (const e of elements.ports) push(portSet(e), portElement(e));
  for (const e of elements.allows) {
    if (cidr(e.source, family(e.hostAddr.family)) && e.source.prefix === 0) push(openSet(e), portElement(e));
    else push(allowSetName(e.hostAddr.family, allowShard(port(e.port))), allowElement(e));
  }
  for (const e of elements.endpoints) push(e.addr.family === 4 ? 'endpoints4' : 'endpoints6', endpointElement(e));
  for (const name of elements.bridges) push('bridges', quotedIfname(name));
  return sets;
}

const quotedIfname = (name: string): string => `"${ifname(name)}"`;

/** `wildcard*` for a binding to every address of the family (`/0`), `ports*` for one address. */
function portSet(e: PortElement): SetName {
  return `${e.hostAddr.prefix === 0 ? 'wildcard' : 'ports'}${family(e.hostAddr.family)}`;
}

/** `openwildcard*` or `open*`: where a port every source may reach is, keyed as in `portSet`. */
function openSet(e: PortElement): SetName {
  return `open${e.hostAddr.prefix === 0 ? 'wildcard' : ''}${family(e.hostAddr.family)}`;
}

/** The key of `portSet` and `openSet`: protocol and port, after the address for a single-address binding (full-length prefix). */
function portElement(e: PortElement): string {
  const f = family(e.hostAddr.family);
  cidr(e.hostAddr, f);
  const key = `${proto(e.proto)} . ${port(e.port)}`;
  if (e.hostAddr.prefix === 0) return key;
  if (e.hostAddr.prefix !== (f === 4 ? 32 : 128)) unsafe('published host address block', e.hostAddr.text);
  return `${e.hostAddr.address} . ${key}`;
}

function allowElement(e: AllowElement): string {
  const f = family(e.hostAddr.family);
  return `${cidr(e.hostAddr, f)} . ${proto(e.proto)} . ${port(e.port)} . ${cidr(e.source, f)}`;
}

function endpointElement(e: EndpointElement): string {
  return `${address(e.addr, family(e.addr.family))} . ${proto(e.proto)} . ${port(e.port)} . ${port(e.hostPort)}`;
}

