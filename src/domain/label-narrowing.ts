import { cidrContains, parseCidr } from './net/cidr.js';
import type { Cidr, Policy } from './policy/model.js';

/** The label a container may carry to narrow who reaches its published ports (`ports.labels: narrow`). */
export const ALLOW_LABEL = 'dockwarden.ports.allow';

/** Label values are untrusted: a bounded number of entries is read, never more. */
const MAX_ENTRIES = 256;

export type LabelAllowance = { readonly ok: true; readonly cidrs: readonly Cidr[] } | { readonly ok: false; readonly error: string };

/**
 * Parses the label value: addresses, CIDRs and names of the policy's source sets, separated by commas
 * or spaces. Anything unreadable makes the whole label an error, which callers treat as "nobody":
 * a label can only narrow, so a broken one must not fall back to the wider policy.
 */
export function parseAllowLabel(value: string, policy: Pick<Policy, 'sources'>): LabelAllowance {
  const entries = value.split(/[\s,]+/).filter(Boolean);
  if (entries.length === 0) return { ok: false, error: `${ALLOW_LABEL} is empty` };
  if (entries.length > MAX_ENTRIES) return { ok: false, error: `${ALLOW_LABEL} has more than ${MAX_ENTRIES} entries` };
  const cidrs: Cidr[] = [];
  for (const entry of entries) {
    const set = policy.sources.get(entry);
    const cidr = set ? null : parseCidr(entry);
    if (set) cidrs.push(...set);
    else if (cidr) cidrs.push(cidr);
    else return { ok: false, error: `${ALLOW_LABEL}: ${JSON.stringify(entry.slice(0, 80))} is not an address, CIDR or source set` };
  }
  return { ok: true, cidrs };
}

/**
 * The addresses in both `allowed` and `label`. Two CIDR blocks are either disjoint or one holds the
 * other, so the intersection is the smaller block of every nested pair.
 */
export function narrow(allowed: 'any' | readonly Cidr[], label: readonly Cidr[]): Cidr[] {
  const result = new Map<string, Cidr>();
  for (const wanted of label) {
    if (allowed === 'any') result.set(wanted.text, wanted);
    else {
      for (const granted of allowed) {
        if (cidrContains(granted, wanted)) result.set(wanted.text, wanted);
        else if (cidrContains(wanted, granted)) result.set(granted.text, granted);
      }
    }
  }
  return [...result.values()];
}
