/**
 * What the firewall should hold: the contents of the `inet dockwarden` sets (docs/architecture.md "The firewall and bridge tables"). Pure: facts and
 * decisions in, typed set elements out. The rules are constant; containers live only in set elements,
 * so a container start or stop is the small `diffElements` of two plans, applied as one transaction.
 */
import type { Decision } from '../decision.js';
import type { ContainerFacts, Protocol } from '../facts.js';
import { cidrContains, parseCidr } from '../net/cidr.js';
import { sameKeysApart } from '../same-keys.js';
import type { Cidr } from '../policy/model.js';

export type Family = 4 | 6;

/** A single address in canonical text (dotted quad; RFC 5952 for IPv6). */
export interface IpAddress {
  readonly family: Family;
  readonly text: string;
}

/** `ports4`/`ports6`: the host side of a published port; `hostAddr` is `/32`, `/128`, or `/0` for a wildcard binding. */
export interface PortElement {
  readonly hostAddr: Cidr;
  readonly proto: Protocol;
  readonly port: number;
}

/** `allow4`/`allow6`: one source block allowed to reach a port; `source` has the family of `hostAddr`. */
export interface AllowElement extends PortElement {
  readonly source: Cidr;
}

/**
 * `endpoints4`/`endpoints6`: a container address and port that dockwarden has judged, with the host
 * port it was judged for. Docker gives a removed container's address to the next container: without
 * the host port, the element a removed container left while dockwarden was down would let that next
 * container's new published ports through before they are judged (found by scripts/bench/chaos.ts).
 */
export interface EndpointElement {
  readonly addr: IpAddress;
  readonly proto: Protocol;
  readonly port: number;
  /** The host port a DNATed connection came in on (its original destination port). */
  readonly hostPort: number;
}

/** The contents of every set, each sorted and free of duplicates and overlaps. */
export interface FirewallElements {
  readonly ports: readonly PortElement[];
  readonly allows: readonly AllowElement[];
  readonly endpoints: readonly EndpointElement[];
  /** Docker bridge interface names (`docker0`, `br-<id12>`, custom). */
  readonly bridges: readonly string[];
}

export interface FirewallPlan extends FirewallElements {
  /** `ports.default: deny`: DNATed new connections to endpoints not in `endpoints*` are dropped. */
  readonly defaultDeny: boolean;
  /** Docker bridges whose containers may be reached at their own IPv4 / IPv6 addresses (not only through a published port). */
  readonly routed4: readonly string[];
  readonly routed6: readonly string[];
  /** The admin's own bridges (not Docker's, config `firewall.otherBridges`): nothing going out to them is filtered. */
  readonly otherBridges: readonly string[];
  /** `mode: audit`: nothing is dropped; what would have been is counted (per source at published ports). Absent = enforce. */
  readonly audit?: boolean;
  /** With `defaultDeny`: new connections to a local socket in this cgroup (docker-proxy's) on a port not judged are dropped. */
  readonly engineCgroup?: EngineCgroup;
}

/**
 * The cgroup v2 that holds the watched engine's dockerd and nothing but it and its children (docker-proxy),
 * as nft's `socket cgroupv2` names it: `path`, relative to the cgroup v2 mount, one segment a level
 * (`system.slice/docker.service`); `mount`, where that mount is under /sys/fs/cgroup, where nft looks
 * (`''` on a unified host, `unified` on a hybrid one). A fact of the host (engine-cgroup.ts), never a
 * container's; rendered only after re-validation (safe-values.ts `cgroupPath`).
 */
export interface EngineCgroup {
  readonly mount: string;
  readonly path: string;
  /** Its id when read (the inode number of its directory), what nft loads: the same path made again has another. */
  readonly id: number;
}

export const sameCgroup = (a: EngineCgroup | undefined, b: EngineCgroup | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.mount === b.mount && a.path === b.path && a.id === b.id);

/** One published host port of one container, with every source block allowed to reach it. */
export interface PortClaim {
  readonly hostAddr: Cidr;
  readonly proto: Protocol;
  readonly port: number;
  /** Disjoint blocks of the family of `hostAddr`; empty = nobody. */
  readonly sources: readonly Cidr[];
}

/** What one container contributes; `planAll` merges these, so shared elements are never lost. */
export interface ContainerElements {
  readonly containerId: string;
  readonly claims: readonly PortClaim[];
  readonly endpoints: readonly EndpointElement[];
}

export interface PlanOptions {
  readonly defaultDeny: boolean;
  readonly bridges: readonly string[];
  /** None when left out: every bridge is closed to direct routing. */
  readonly routed4?: readonly string[];
  readonly routed6?: readonly string[];
  readonly otherBridges?: readonly string[];
  readonly audit?: boolean;
  /** Absent: none usable (README "Published ports" › The guard). */
  readonly engineCgroup?: EngineCgroup;
}

export interface ElementDiff {
  readonly add: FirewallElements;
  readonly delete: FirewallElements;
}

/** A value from Docker or a decision that cannot become a set element (it would never come from a sane engine). */
export class FirewallInputError extends Error {
  override readonly name = 'FirewallInputError';
  constructor(
    readonly containerId: string,
    message: string,
  ) {
    super(`container ${containerId}: ${message}`);
  }
}

export const isFirewallInputError = (err: unknown): err is FirewallInputError => err instanceof FirewallInputError;

/** A single address (no prefix), parsed as strictly as policy addresses; null when it is not one. */
export function parseAddress(text: string): IpAddress | null {
  const block = text.includes('/') ? undefined : parseCidr(text);
  return block ? { family: block.family, text: block.address } : null;
}

/** The block of a wildcard binding (`0.0.0.0`, `::`) and of an allowance of every source. */
export const WILDCARD: Readonly<Record<Family, Cidr>> = {
  4: { family: 4, address: '0.0.0.0', prefix: 0, text: '0.0.0.0/0' },
  6: { family: 6, address: '::', prefix: 0, text: '::/0' },
};

/** The elements one container contributes: none unless it runs; ports with host port 0 are not published. */
export function planContainer(facts: ContainerFacts, decision: Pick<Decision, 'containerId' | 'ports'>): ContainerElements {
  const id = facts.id;
  if (decision.containerId !== id) throw new FirewallInputError(id, `decision is for ${decision.containerId}`);
  if (!facts.state.running) return { containerId: id, claims: [], endpoints: [] };

  const addresses = facts.networks.flatMap((net) =>
    [net.ipv4, net.ipv6].filter((text) => text !== '').map((text) => parseOrThrow(id, text, 'network address')),
  );
  const claims: PortClaim[] = [];
  const endpoints: EndpointElement[] = [];
  for (const { port, allow } of decision.ports) {
    if (port.hostPort === 0) continue;
    checkPort(id, port.hostPort, 'host port');
    checkPort(id, port.containerPort, 'container port');
    const hostAddr = hostBinding(id, port.hostIp);
    const sources = allow === 'any' ? [WILDCARD[hostAddr.family]] : collapse(allow.filter((c) => c.family === hostAddr.family));
    claims.push({ hostAddr, proto: port.proto, port: port.hostPort, sources });
    for (const addr of addresses.filter((a) => a.family === hostAddr.family)) {
      endpoints.push({ addr, proto: port.proto, port: port.containerPort, hostPort: port.hostPort });
    }
  }
  return { containerId: id, claims, endpoints };
}

/** A host port served before its container is judged (docker-proxy's binding: `src/adapters/proc/docker-proxy.ts`). */
export interface ServedPort {
  readonly proto: Protocol;
  readonly hostIp: string;
  readonly hostPort: number;
}

/**
 * The claims that close `served` ports to every source until they are judged, leaving out those
 * `judged` (a claim covering the binding) and those that do not parse. A closed claim merged with a
 * judged one on an overlapping address allows nobody (`mergeOverlapping`), so it must go when its
 * port is judged: `withoutGroupsOf`.
 */
export function closedUntilJudged(served: readonly ServedPort[], judged: (claim: PortClaim) => boolean): PortClaim[] {
  const claims: PortClaim[] = [];
  for (const { proto, hostIp, hostPort } of served) {
    let hostAddr: Cidr;
    try {
      checkPort('docker-proxy', hostPort, 'host port');
      hostAddr = hostBinding('docker-proxy', hostIp);
    } catch {
      continue;
    }
    const claim = { hostAddr, proto, port: hostPort, sources: [] };
    if (!judged(claim)) claims.push(claim);
  }
  return claims;
}

/** `claims` without those of the port groups (family, protocol, host port) `others` claim. */
export function withoutGroupsOf(claims: readonly PortClaim[], others: readonly PortClaim[]): PortClaim[] {
  const taken = new Set(others.map(groupKey));
  return claims.filter((claim) => !taken.has(groupKey(claim)));
}

/**
 * The whole desired content, derived from every container's contribution, so deleting one container
 * never removes an element another still needs. Claims on overlapping host addresses of one port (two
 * containers, during an address-reuse race or a DNAT conflict) would be overlapping set elements, which
 * the kernel rejects; a packet may then reach either container, so they fail closed: one element for the
 * widest address, allowing only the sources every overlapping claim allows.
 */
export function planAll(containers: Iterable<ContainerElements>, options: PlanOptions): FirewallPlan {
  const plan = new IncrementalPlan();
  for (const container of containers) plan.set(container);
  return plan.plan(options);
}

/**
 * The desired content kept current one container at a time. A change recomputes only the port
 * groups (family, protocol, host port) that container claims, and reference-counts endpoints, so its
 * cost does not grow with the number of other containers. `set` returns the element delta.
 */
export class IncrementalPlan {
  private readonly containers = new Map<string, ContainerElements>();
  /** Group key → the claims of each container in it. */
  private readonly claimsByGroup = new Map<string, Map<string, readonly PortClaim[]>>();
  /** Group key → its merged elements, as last returned. */
  private readonly elementsByGroup = new Map<string, { ports: PortElement[]; allows: AllowElement[] }>();
  private readonly endpoints = new Map<string, { element: EndpointElement; count: number }>();

  get size(): number {
    return this.containers.size;
  }

  /** Replaces one container's contribution (no claims and no endpoints = gone). */
  set(next: ContainerElements): ElementDiff {
    const id = next.containerId;
    const before = this.containers.get(id);
    if (next.claims.length + next.endpoints.length === 0) this.containers.delete(id);
    else this.containers.set(id, next);

    const affected = new Set([...(before?.claims ?? []), ...next.claims].map(groupKey));
    for (const group of affected) {
      const members = this.claimsByGroup.get(group) ?? new Map<string, readonly PortClaim[]>();
      const mine = next.claims.filter((claim) => groupKey(claim) === group);
      if (mine.length > 0) members.set(id, mine);
      else members.delete(id);
      if (members.size > 0) this.claimsByGroup.set(group, members);
      else this.claimsByGroup.delete(group);
    }

    const add = emptyElements();
    const del = emptyElements();
    for (const group of affected) {
      const old = this.elementsByGroup.get(group) ?? { ports: [], allows: [] };
      const merged = mergeOverlapping([...(this.claimsByGroup.get(group)?.values() ?? [])].flat());
      const now = {
        ports: merged.map(({ hostAddr, proto, port }) => ({ hostAddr, proto, port })),
        allows: merged.flatMap(({ sources, ...port }) => sources.map((source) => ({ ...port, source }))),
      };
      if (now.ports.length > 0) this.elementsByGroup.set(group, now);
      else this.elementsByGroup.delete(group);
      add.ports.push(...difference(now.ports, old.ports, portKey));
      add.allows.push(...difference(now.allows, old.allows, allowKey));
      del.ports.push(...difference(old.ports, now.ports, portKey));
      del.allows.push(...difference(old.allows, now.allows, allowKey));
    }

    for (const endpoint of next.endpoints) {
      const held = this.endpoints.get(endpointKey(endpoint));
      if (held) held.count++;
      else {
        this.endpoints.set(endpointKey(endpoint), { element: endpoint, count: 1 });
        add.endpoints.push(endpoint);
      }
    }
    for (const endpoint of before?.endpoints ?? []) {
      const key = endpointKey(endpoint);
      const held = this.endpoints.get(key)!;
      if (--held.count > 0) continue;
      this.endpoints.delete(key);
      del.endpoints.push(endpoint);
    }
    return { add, delete: del };
  }

  /** The containers whose claim on `proto`/`port` covers host address `addr`: whose port an audit count is about. */
  claimants(addr: IpAddress, proto: Protocol, port: number): string[] {
    const block = singleBlock(addr);
    const members = this.claimsByGroup.get(`${addr.family} ${proto} ${port}`) ?? new Map<string, readonly PortClaim[]>();
    return [...members].filter(([, claims]) => claims.some((claim) => cidrContains(claim.hostAddr, block))).map(([id]) => id);
  }

  /** Whether a container other than `except` claims an address of `claim`'s port group that covers `claim`'s. */
  covers(claim: PortClaim, except: string): boolean {
    const members = this.claimsByGroup.get(groupKey(claim)) ?? new Map<string, readonly PortClaim[]>();
    return [...members].some(([id, claims]) => id !== except && claims.some((c) => cidrContains(c.hostAddr, claim.hostAddr)));
  }

  /** The published ports alone, sorted (what the boot baseline remembers). Costs all port groups. */
  ports(): PortElement[] {
    return sortByKey([...this.elementsByGroup.values()].flatMap((g) => g.ports), portKey);
  }

  /** Everything, sorted: for a full replace and status. Costs all containers. */
  plan(options: PlanOptions): FirewallPlan {
    const unsorted = this.snapshot(options);
    return { ...unsorted, ports: this.ports(), allows: sortByKey(unsorted.allows, allowKey), endpoints: sortByKey(unsorted.endpoints, endpointKey) };
  }

  /**
   * Everything, in no particular order: for a drift check, which compares sets. A copy, not a sort
   * (a sort of every element held the event loop ~75 ms at 10,000 containers).
   */
  snapshot(options: PlanOptions): FirewallPlan {
    const groups = [...this.elementsByGroup.values()];
    return {
      ports: groups.flatMap((g) => g.ports),
      allows: groups.flatMap((g) => g.allows),
      endpoints: [...this.endpoints.values()].map((e) => e.element),
      bridges: names(options.bridges),
      defaultDeny: options.defaultDeny,
      routed4: names(options.routed4),
      routed6: names(options.routed6),
      otherBridges: names(options.otherBridges),
      ...(options.audit ? { audit: true } : {}),
      ...(options.engineCgroup ? { engineCgroup: options.engineCgroup } : {}),
    };
  }
}

const names = (list: readonly string[] = []): string[] => [...new Set(list)].sort();

type PendingElement = { readonly kind: 'ports' | 'allows' | 'endpoints'; readonly element: PortElement | AllowElement | EndpointElement };

/**
 * Element changes not yet applied, accumulated across several `IncrementalPlan.set` deltas: an add
 * and a delete of the same element cancel out, so what is taken is one consistent transaction.
 */
export class PendingChanges {
  private readonly add = new Map<string, PendingElement>();
  private readonly del = new Map<string, PendingElement>();

  get empty(): boolean {
    return this.add.size + this.del.size === 0;
  }

  record(diff: ElementDiff): void {
    for (const kind of ELEMENT_KINDS) {
      for (const element of diff.delete[kind]) {
        const key = elementKey(kind, element);
        if (!this.add.delete(key)) this.del.set(key, { kind, element });
      }
      for (const element of diff.add[kind]) {
        const key = elementKey(kind, element);
        if (!this.del.delete(key)) this.add.set(key, { kind, element });
      }
    }
  }

  /** The `elementKey` of every element added or deleted. */
  *keys(): Iterable<string> {
    yield* this.add.keys();
    yield* this.del.keys();
  }

  /** The accumulated transaction; empties the record. */
  take(): ElementDiff {
    const collect = (from: ReadonlyMap<string, PendingElement>): FirewallElements => {
      const out = emptyElements();
      for (const { kind, element } of from.values()) (out[kind] as unknown[]).push(element);
      return out;
    };
    const diff = { add: collect(this.add), delete: collect(this.del) };
    this.clear();
    return diff;
  }

  clear(): void {
    this.add.clear();
    this.del.clear();
  }
}

const ELEMENT_KINDS = ['ports', 'allows', 'endpoints'] as const;

/** One element's identity across its kind: what PendingChanges, `diffKeys` and `sameElementsApart` key on. */
export function elementKey(kind: 'ports' | 'allows' | 'endpoints', element: PortElement | AllowElement | EndpointElement): string {
  if (kind === 'ports') return `port ${portKey(element as PortElement)}`;
  if (kind === 'allows') return `allow ${allowKey(element as AllowElement)}`;
  return `endpoint ${endpointKey(element as EndpointElement)}`;
}

const groupKey = (claim: PortClaim): string => `${claim.hostAddr.family} ${claim.proto} ${claim.port}`;
const emptyElements = () => ({ ports: [] as PortElement[], allows: [] as AllowElement[], endpoints: [] as EndpointElement[], bridges: [] as string[] });

/** The element transaction that turns `before` into `after`. */
export function diffElements(before: FirewallElements, after: FirewallElements): ElementDiff {
  const minus = (a: FirewallElements, b: FirewallElements): FirewallElements => ({
    ports: difference(a.ports, b.ports, portKey),
    allows: difference(a.allows, b.allows, allowKey),
    endpoints: difference(a.endpoints, b.endpoints, endpointKey),
    bridges: difference(a.bridges, b.bridges, (name) => name),
  });
  return { add: minus(after, before), delete: minus(before, after) };
}

/** The `elementKey` of every element a diff adds or deletes. */
export function diffKeys(diff: ElementDiff): string[] {
  return ELEMENT_KINDS.flatMap((kind) => [...diff.add[kind], ...diff.delete[kind]].map((element) => elementKey(kind, element)));
}

/**
 * Whether `found` (the kernel's, as read) and `expected` (what was applied when the read began) hold
 * the same elements apart from those whose key is in `changing` (see `sameKeysApart`): the bridges
 * exactly, the elements in turns that let events run.
 */
export async function sameElementsApart(
  found: FirewallElements, expected: FirewallElements, changing: ReadonlySet<string>, pause: () => Promise<void>,
): Promise<boolean> {
  return sameNames(found.bridges, expected.bridges) && sameKeysApart(elementKeys(found), elementKeys(expected), changing, pause);
}

function* elementKeys(elements: FirewallElements): Iterable<string> {
  for (const kind of ELEMENT_KINDS) for (const element of elements[kind]) yield elementKey(kind, element);
}

const sameNames = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((name) => b.includes(name));

export const isEmpty = (elements: FirewallElements): boolean =>
  elements.ports.length + elements.allows.length + elements.endpoints.length + elements.bridges.length === 0;

const portKey = (e: PortElement): string => `${e.hostAddr.text} . ${e.proto} . ${e.port}`;
const allowKey = (e: AllowElement): string => `${portKey(e)} . ${e.source.text}`;
const endpointKey = (e: EndpointElement): string => `${e.addr.text} . ${e.proto} . ${e.port} . ${e.hostPort}`;

function parseOrThrow(containerId: string, text: string, what: string): IpAddress {
  const addr = parseAddress(text);
  if (!addr) throw new FirewallInputError(containerId, `${what} is not an IP address: ${JSON.stringify(text)}`);
  return addr;
}

function checkPort(containerId: string, port: number, what: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new FirewallInputError(containerId, `${what} ${port} outside 1..65535`);
}

/** `0.0.0.0` and `''` bind every IPv4 address, `::` every IPv6 one; anything else is one address. */
function hostBinding(containerId: string, hostIp: string): Cidr {
  if (hostIp === '') return WILDCARD[4];
  const addr = parseOrThrow(containerId, hostIp, 'host ip');
  if (addr.text === '0.0.0.0' || addr.text === '::') return WILDCARD[addr.family];
  return singleBlock(addr);
}

/** One address as a `/32` or `/128` block. */
function singleBlock(addr: IpAddress): Cidr {
  const prefix = addr.family === 4 ? 32 : 128;
  return { family: addr.family, address: addr.text, prefix, text: `${addr.text}/${prefix}` };
}

/** Drops every block inside another: the kernel rejects overlapping elements. Blocks nest or are disjoint, so the rest are disjoint. */
function collapse(blocks: readonly Cidr[]): Cidr[] {
  const widestFirst = [...blocks].sort((a, b) => a.prefix - b.prefix);
  return widestFirst.filter((block, i) => !widestFirst.slice(0, i).some((wider) => cidrContains(wider, block)));
}

/** The blocks inside both lists (each disjoint): of each nested pair, the inner one. */
function intersect(a: readonly Cidr[], b: readonly Cidr[]): Cidr[] {
  return a.flatMap((x) => b.flatMap((y) => (cidrContains(x, y) ? [y] : cidrContains(y, x) ? [x] : [])));
}

/** Claims of one family, protocol and port: overlapping host addresses fail closed (see `planAll`). */
function mergeOverlapping(claims: readonly PortClaim[]): PortClaim[] {
  const merged: PortClaim[] = [];
  for (const claim of [...claims].sort((a, b) => a.hostAddr.prefix - b.hostAddr.prefix)) {
    const i = merged.findIndex((m) => cidrContains(m.hostAddr, claim.hostAddr));
    if (i < 0) merged.push(claim);
    else merged[i] = { ...merged[i]!, sources: intersect(merged[i]!.sources, claim.sources) };
  }
  return merged;
}

function sortByKey<T>(items: readonly T[], key: (item: T) => string): T[] {
  const byKey = new Map(items.map((item) => [key(item), item] as const));
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

function difference<T>(a: readonly T[], b: readonly T[], key: (item: T) => string): T[] {
  const inB = new Set(b.map(key));
  return a.filter((item) => !inB.has(key(item)));
}
