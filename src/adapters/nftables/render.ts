/**
 * Renders a `FirewallPlan` as `nft -f` text (docs/architecture.md "The firewall and bridge tables"). Pure. Every value is re-validated here, so a
 * plan built by hand or from hostile input can only fail, never inject: numbers in range, canonical
 * addresses, the protocol enum, interface names of a fixed alphabet. No name, label or image ever
 * reaches the script. Each published port is its own element, so no port ranges are needed.
 */
import type {
  AllowElement, ElementDiff, EndpointElement, FirewallElements, FirewallPlan, PortElement,
} from '../../domain/firewall/plan.js';
import { PROTOCOLS } from '../../domain/facts.js';
import { address, cidr, family, ifname, port, proto } from '../firewall/safe-values.js';

export { UnsafeValueError, isUnsafeValueError } from '../firewall/safe-values.js';

export const TABLE = 'inet dockwarden';

export const SET_TYPES = {
  ports4: 'ipv4_addr . inet_proto . inet_service',
  ports6: 'ipv6_addr . inet_proto . inet_service',
  allow4: 'ipv4_addr . inet_proto . inet_service . ipv4_addr',
  allow6: 'ipv6_addr . inet_proto . inet_service . ipv6_addr',
  endpoints4: 'ipv4_addr . inet_proto . inet_service . inet_service',
  endpoints6: 'ipv6_addr . inet_proto . inet_service . inet_service',
  bridges: 'ifname',
  routed4: 'ifname',
  routed6: 'ifname',
  otherBridges: 'ifname',
} as const;
export type SetName = keyof typeof SET_TYPES;
const SET_NAMES = Object.keys(SET_TYPES) as SetName[];

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

/** Sets keyed on address blocks (wildcard bindings, source CIDRs) need `flags interval`. */
const INTERVAL_SETS: ReadonlySet<SetName> = new Set(['ports4', 'ports6', 'allow4', 'allow6']);

/** The whole table, replaced atomically: create-if-missing, delete, recreate, in one transaction. */
export function renderTable(plan: FirewallPlan): string {
  const sets = renderSets(plan);
  sets.routed4 = plan.routed4.map(quotedIfname);
  sets.routed6 = plan.routed6.map(quotedIfname);
  sets.otherBridges = plan.otherBridges.map(quotedIfname);
  const setBlocks = SET_NAMES.map((name) => {
    const lines = [`\tset ${name} {`, `\t\ttype ${SET_TYPES[name]}`];
    if (INTERVAL_SETS.has(name)) lines.push('\t\tflags interval');
    if (sets[name].length > 0) lines.push('\t\telements = {', ...elementLines(sets[name], '\t\t\t'), '\t\t}');
    return [...lines, '\t}'].join('\n');
  });
  const auditBlocks = Object.entries(AUDIT_SETS).map(([name, type]) =>
    [`\tset ${name} {`, `\t\ttype ${type}`, `\t\tsize ${AUDIT_SET_SIZE}`, '\t\tflags dynamic, timeout', '\t\ttimeout 1h', '\t\tcounter', '\t}'].join('\n'));
  return [
    `table ${TABLE} {}`,
    `delete table ${TABLE}`,
    `table ${TABLE} {`,
    ...setBlocks,
    ...auditBlocks,
    chains(plan.defaultDeny, plan.audit ?? false),
    '}',
    '',
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
export function renderElementChanges(diff: ElementDiff): string {
  const commands = (verb: 'add' | 'delete', elements: FirewallElements): string[] => {
    const sets = renderSets(elements);
    return SET_NAMES
      .filter((name) => sets[name].length > 0)
      .map((name) => [`${verb} element ${TABLE} ${name} {`, ...elementLines(sets[name], '\t'), '}'].join('\n'));
  };
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
function chains(defaultDeny: boolean, audit: boolean): string {
  const drop = audit ? 'counter return' : 'counter drop';
  const decide = (ip: 'ip' | 'ip6', family: 4 | 6): string[] => [
    `\tchain decide${family} {`,
    `\t\t${ip} daddr . meta l4proto . th dport . ${ip} saddr @allow${family} return`,
    ...(audit ? [`\t\tct state new update @audit${family} { ${ip} saddr . ${ip} daddr . meta l4proto . th dport }`] : []),
    `\t\t${drop}`,
    '\t}',
  ];
  return [
    '\tchain prerouting {',
    '\t\ttype filter hook prerouting priority -150; policy accept;',
    '\t\tiif != "lo" fib daddr type local ip daddr . meta l4proto . th dport @ports4 jump decide4',
    '\t\tiif != "lo" fib daddr type local ip6 daddr . meta l4proto . th dport @ports6 jump decide6',
    '\t}',
    ...decide('ip', 4),
    ...decide('ip6', 6),
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

/** One element a line, so an error nft reports by line names the element. */
function elementLines(elements: readonly string[], indent: string): string[] {
  return elements.map((element, i) => `${indent}${element}${i < elements.length - 1 ? ',' : ''}`);
}

function renderSets(elements: FirewallElements): Record<SetName, string[]> {
  const sets: Record<SetName, string[]> = {
    ports4: [], ports6: [], allow4: [], allow6: [], endpoints4: [], endpoints6: [], bridges: [], routed4: [], routed6: [], otherBridges: [],
  };
  for (const e of elements.ports) sets[e.hostAddr.family === 4 ? 'ports4' : 'ports6'].push(portElement(e));
  for (const e of elements.allows) sets[e.hostAddr.family === 4 ? 'allow4' : 'allow6'].push(allowElement(e));
  for (const e of elements.endpoints) sets[e.addr.family === 4 ? 'endpoints4' : 'endpoints6'].push(endpointElement(e));
  sets.bridges = elements.bridges.map(quotedIfname);
  return sets;
}

const quotedIfname = (name: string): string => `"${ifname(name)}"`;

function portElement(e: PortElement): string {
  return `${cidr(e.hostAddr, family(e.hostAddr.family))} . ${proto(e.proto)} . ${port(e.port)}`;
}

function allowElement(e: AllowElement): string {
  return `${portElement(e)} . ${cidr(e.source, e.hostAddr.family)}`;
}

function endpointElement(e: EndpointElement): string {
  return `${address(e.addr, family(e.addr.family))} . ${proto(e.proto)} . ${port(e.port)} . ${port(e.hostPort)}`;
}

