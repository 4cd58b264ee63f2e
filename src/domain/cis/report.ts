import type { Policy } from '../policy/model.js';
import { BENCHMARK, CIS_ITEMS, type CheckRef, type CisItem } from './catalogue.js';
import { concerns, coverage } from './coverage.js';

/**
 * PASS: the policy judges the item and no running container fails it. WARN: some container fails it.
 * NOTE: not judged, with the reason (the policy leaves the check off, this build has no such check, or
 * a host daemon cannot see it). N/A: the item does not apply to this host (no AppArmor).
 */
export type CisStatus = 'PASS' | 'WARN' | 'NOTE' | 'N/A';

/** One container's finding, as `dockwarden check` reports it. */
export interface CisFinding {
  readonly container: { readonly id: string; readonly name: string; readonly image: string };
  readonly check: string;
  readonly severity: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** What the host offers that some items depend on; read once by an adapter. */
export interface HostSecurity {
  readonly apparmor: boolean;
}

export interface CisLine {
  readonly id: string;
  readonly title: string;
  readonly assessment: CisItem['assessment'];
  readonly status: CisStatus;
  /** The check (and part) that decides the item; null for items only noted. */
  readonly check: string | null;
  /** Why NOTE or N/A; null for PASS and WARN. */
  readonly reason: string | null;
  /** The running containers that fail the item, each once, in the order `check` found them. */
  readonly failing: ReadonlyArray<CisFinding['container'] & { readonly severity: string; readonly message: string }>;
}

export interface CisReport {
  readonly benchmark: typeof BENCHMARK;
  readonly containers: number;
  readonly items: readonly CisLine[];
  readonly counts: Readonly<Record<CisStatus, number>>;
}

export const NOT_IN_POLICY = 'not checked by this policy';
export const NOT_IN_BUILD = 'not checked by this build of dockwarden';
export const NO_APPARMOR = 'not applicable: AppArmor is not enabled on this host';

/** The CIS view of one `check` run: every catalogue item, the containers failing it. Pure. */
export function cisReport(policy: Policy, host: HostSecurity, containers: number, findings: readonly CisFinding[]): CisReport {
  const items = CIS_ITEMS.map((item) => line(item, policy, host, findings));
  const counts = { PASS: 0, WARN: 0, NOTE: 0, 'N/A': 0 };
  for (const i of items) counts[i.status]++;
  return { benchmark: BENCHMARK, containers, items, counts };
}

function line(item: CisItem, policy: Policy, host: HostSecurity, findings: readonly CisFinding[]): CisLine {
  const base = { id: item.id, title: item.title, assessment: item.assessment };
  const { rule } = item;
  if (rule.kind === 'note') return { ...base, status: 'NOTE', check: null, reason: rule.reason, failing: [] };
  const check = refText(rule.ref);
  if (rule.kind === 'check-if-apparmor' && !host.apparmor) return { ...base, status: 'N/A', check, reason: NO_APPARMOR, failing: [] };
  const covered = coverage(policy, rule.ref);
  const failing = failingContainers(rule.ref, findings);
  if (failing.length > 0) return { ...base, status: 'WARN', check, reason: null, failing };
  if (covered !== 'on') return { ...base, status: 'NOTE', check, reason: covered === 'off' ? NOT_IN_POLICY : NOT_IN_BUILD, failing: [] };
  return { ...base, status: 'PASS', check, reason: null, failing: [] };
}

function failingContainers(ref: CheckRef, findings: readonly CisFinding[]): CisLine['failing'] {
  const seen = new Set<string>();
  const failing: Array<CisLine['failing'][number]> = [];
  for (const f of findings) {
    if (f.check !== ref.check || !concerns(ref, f.details) || seen.has(f.container.id)) continue;
    seen.add(f.container.id);
    failing.push({ ...f.container, severity: f.severity, message: f.message });
  }
  return failing;
}

const refText = (ref: CheckRef) => (ref.part === undefined ? ref.check : `${ref.check} (${ref.part})`);
