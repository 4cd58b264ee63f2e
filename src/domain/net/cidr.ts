import ipaddr from 'ipaddr.js';
import type { Cidr } from '../policy/model.js';

/** Strict dotted quad: ipaddr.js alone also takes `010.0.0.1` (octal 8.0.0.1 to inet_aton, 10.0.0.1 to a human), `10.1` and hex. */
const IPV4 = /^(?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3}$/;
/** Hex groups and colons only: no zone id (`%eth0`), no embedded dotted quad (ipaddr.js misreads `::1.2.3.4`). */
const IPV6 = /^[0-9a-fA-F:]+$/;
const PREFIX = /^(?:0|[1-9]\d{0,2})$/;
const IPV4_MAPPED = ipaddr.IPv6.parse('::ffff:0:0');

/**
 * Parses `address` or `address/prefix` into its canonical block: host bits cleared, IPv6 in
 * ipaddr.js' short form (RFC 5952). A bare address is a /32 or /128.
 *
 * IPv4-mapped IPv6 (`::ffff:198.51.100.7`, `::ffff:c633:6407`) is refused rather than converted: the
 * firewall sees those clients as IPv4 packets, so such an entry would silently match nobody, and
 * writing the IPv4 address is unambiguous.
 */
export function parseCidr(text: string): Cidr | undefined {
  const [address = '', prefixText, ...rest] = text.split('/');
  if (rest.length > 0 || (prefixText !== undefined && !PREFIX.test(prefixText))) return undefined;

  let parsed: ipaddr.IPv4 | ipaddr.IPv6;
  if (IPV4.test(address) && ipaddr.IPv4.isValid(address)) parsed = ipaddr.IPv4.parse(address);
  else if (IPV6.test(address) && ipaddr.IPv6.isValid(address)) parsed = ipaddr.IPv6.parse(address);
  else return undefined;

  const family = parsed.kind() === 'ipv4' ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) return undefined;

  const network = ipaddr.fromByteArray(clearHostBits(parsed.toByteArray(), prefix));
  if (network instanceof ipaddr.IPv6 && prefix >= 96 && network.match(IPV4_MAPPED, 96)) return undefined;
  const canonical = network.toString();
  return { family, address: canonical, prefix, text: `${canonical}/${prefix}` };
}

/** Whether every address of `inner` is in `outer` (different families never contain each other). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  return ipaddr.parse(inner.address).match(ipaddr.parse(outer.address), outer.prefix);
}

function clearHostBits(bytes: number[], prefix: number): number[] {
  return bytes.map((byte, i) => {
    const keep = Math.min(8, Math.max(0, prefix - i * 8));
    return byte & (0xff << (8 - keep)) & 0xff;
  });
}
