/**
 * The only way values of a `FirewallPlan` become ruleset text, for every backend: each is re-checked
 * against its type (numbers in range, canonical addresses, the protocol enum, interface names of a
 * fixed alphabet), so a plan built by hand or from hostile input can only fail, never inject.
 */
import { parseCidr } from '../../domain/net/cidr.js';
import { parseAddress, type EngineCgroup, type Family, type FirewallElements, type IpAddress } from '../../domain/firewall/plan.js';
import type { Protocol } from '../../domain/facts.js';
import type { Cidr } from '../../domain/policy/model.js';
import { isInterfaceName } from '../../domain/net/interface-name.js';

const PROTOCOLS: ReadonlySet<string> = new Set<Protocol>(['tcp', 'udp', 'sctp']);

export class UnsafeValueError extends Error {
  override readonly name = 'UnsafeValueError';
}

export const isUnsafeValueError = (err: unknown): err is UnsafeValueError => err instanceof UnsafeValueError;

export function unsafe(what: string, value: unknown): never {
  throw new UnsafeValueError(`refusing to render ${what} ${JSON.stringify(value)}`);
}

export function family(value: Family): Family {
  return value === 4 || value === 6 ? value : unsafe('address family', value);
}

export function port(value: number): number {
  return Number.isInteger(value) && value >= 1 && value <= 65535 ? value : unsafe('port', value);
}

export function proto(value: Protocol): Protocol {
  return PROTOCOLS.has(value) ? value : unsafe('protocol', value);
}

export function ifname(value: string): string {
  return isInterfaceName(value) ? value : unsafe('interface name', value);
}

export function address(value: IpAddress, expected: Family): string {
  const parsed = typeof value.text === 'string' ? parseAddress(value.text) : null;
  return parsed?.family === expected && value.family === expected && parsed.text === value.text
    ? value.text
    : unsafe(`IPv${expected} address`, value);
}

/**
 * A cgroup path segment nft may be given inside double quotes: what systemd names units and slices
 * with (`system.slice`, `docker.service`, `user@1000.service`), no quote, backslash, space or `/`.
 */
const CGROUP_SEGMENT = /^[A-Za-z0-9_.:@+-]{1,255}$/;

/**
 * `socket cgroupv2 level N "PATH"`'s level and path: PATH relative to /sys/fs/cgroup (where nft resolves
 * it), N the depth of the cgroup in the v2 hierarchy, so the mount's own segment does not count. Never
 * the root (level 0 would be every socket of the host), never `.` or `..`.
 */
export function cgroupPath(value: EngineCgroup): { path: string; level: number } {
  const segments = (text: unknown): string[] | null => {
    if (typeof text !== 'string') return null;
    const parts = text === '' ? [] : text.split('/');
    return parts.every((s) => CGROUP_SEGMENT.test(s) && s !== '.' && s !== '..') ? parts : null;
  };
  const mount = segments(value.mount);
  const path = segments(value.path);
  if (mount === null || mount.length > 1 || path === null || path.length === 0) unsafe('cgroup', value);
  return { path: [...mount, ...path].join('/'), level: path.length };
}

/** Canonical: re-parsing the text gives exactly this block of the expected family (no host bits set). */
export function cidr(value: Cidr, expected: Family): string {
  const parsed = typeof value.text === 'string' ? parseCidr(value.text) : undefined;
  const valid = parsed?.family === expected && value.family === expected && parsed.address === value.address &&
    parsed.prefix === value.prefix && parsed.text === value.text;
  return valid ? value.text : unsafe(`IPv${expected} block`, value);
}

/** Checks every value of `elements`; throws UnsafeValueError on the first that could not be rendered safely. */
export function assertRenderable(elements: FirewallElements): void {
  for (const e of [...elements.ports, ...elements.allows]) {
    cidr(e.hostAddr, family(e.hostAddr.family));
    proto(e.proto);
    port(e.port);
  }
  for (const e of elements.allows) cidr(e.source, e.hostAddr.family);
  for (const e of elements.endpoints) {
    address(e.addr, family(e.addr.family));
    proto(e.proto);
    port(e.port);
    port(e.hostPort);
  }
  for (const name of elements.bridges) ifname(name);
}
