import { CHECK_IDS, IMAGE_HYGIENE_CHECK_IDS, type Policy } from '../policy/model.js';
import type { CheckRef } from './catalogue.js';

/** Whether the policy judges what a CIS item asks: `on`, `off`, or `unknown` to this build of dockwarden. */
export type Coverage = 'on' | 'off' | 'unknown';

/**
 * The parts a check judges only when the policy lists them (`host-namespaces: { namespaces: [net] }`),
 * and where a finding names the parts it concerns.
 */
const PARTS: Readonly<Record<string, { readonly listed: (p: Policy) => readonly string[] | undefined; readonly found: string }>> = {
  'host-namespaces': { listed: (p) => p.containers.hostNamespaces?.namespaces, found: 'namespaces' },
  'resource-limits': { listed: (p) => p.containers.resourceLimits?.require, found: 'missing' },
};

/**
 * A runtime check is on when its settings are present under `containers` (the check id in camelCase,
 * as the policy model names every one); the image check always judges (`images.default` decides what
 * no rule matches). Check ids this build does not have are `unknown`.
 */
export function coverage(policy: Policy, ref: CheckRef): Coverage {
  if (ref.check === 'image') return 'on';
  // The image hygiene checks live under `images` (`images.latest-tag` → `images.latestTag`).
  if ((IMAGE_HYGIENE_CHECK_IDS as readonly string[]).includes(ref.check)) {
    return (policy.images as unknown as Readonly<Record<string, unknown>>)[camelCase(ref.check.slice('images.'.length))] === undefined ? 'off' : 'on';
  }
  if (!(CHECK_IDS as readonly string[]).includes(ref.check)) return 'unknown';
  const settings = (policy.containers as unknown as Readonly<Record<string, unknown>>)[camelCase(ref.check)];
  if (settings === undefined) return 'off';
  if (ref.part === undefined) return 'on';
  return PARTS[ref.check]?.listed(policy)?.includes(ref.part) ? 'on' : 'off';
}

/** Whether a finding of the referenced check concerns the referenced part (a check without parts: always). */
export function concerns(ref: CheckRef, details: Readonly<Record<string, unknown>>): boolean {
  if (ref.part === undefined) return true;
  const found = details[PARTS[ref.check]?.found ?? ''];
  return Array.isArray(found) && found.includes(ref.part);
}

const camelCase = (id: string) => id.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
