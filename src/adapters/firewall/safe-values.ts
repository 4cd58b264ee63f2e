/**
 * The only way values of a `FirewallPlan` become ruleset text, for every backend: each is re-checked
 * against its type (numbers in range, canonical addresses, the protocol enum, interface names of a
 * fixed alphabet), so a plan built by hand or from hostile input can only fail, never inject.
 */
import { parseCidr } from '../../domain/net/cidr.js';
import { parseAddress, type Family, type FirewallElements, type IpAddress } from '../../domain/firewall/plan.js';
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
