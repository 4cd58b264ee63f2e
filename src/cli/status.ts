import { judgeFor } from '../app/judge.js';
import { selectBackend } from '../adapters/firewall/select.js';
import type { Config } from '../app/config.js';
import { latestByPath, readRelabelRecords, type RelabelRecord } from '../app/relabel-record.js';
import { bridgeOptions } from '../domain/firewall/bridge-options.js';
import { planAll, type ContainerElements } from '../domain/firewall/plan.js';
import { portLabel } from '../domain/port-label.js';
import type { Paint } from './colour.js';
import { policyOrReport } from './policy-or-report.js';
import { printable } from './printable.js';

export interface StatusReport {
  /** The latest SELinux relabel record of each path (the daemon keeps them in the state dir). */
  readonly relabels: readonly RelabelRecord[];
  readonly firewall: { readonly backend: string; readonly inSync: boolean; readonly drift: string | null };
  readonly containers: ReadonlyArray<{
    readonly id: string;
    readonly name: string;
    readonly ports: ReadonlyArray<{ readonly port: string; readonly containerPort: number; readonly rule: string | null; readonly allow: 'any' | readonly string[]; readonly note: string | null }>;
  }>;
}

/**
 * `dockwarden status`: for every running container, each published port and who may reach it, as
 * the policy decides now; and whether the kernel's ruleset is exactly that. Needs no running daemon.
 */
export async function statusCommand(config: Config, json: boolean, paint: Paint): Promise<number> {
  const policy = policyOrReport(config.policy.file);
  if (!policy) return 2;
  const judge = await judgeFor(config, policy);
  const backend = await selectBackend(config.firewall.backend);
  const containers: StatusReport['containers'][number][] = [];
  const elements: ContainerElements[] = [];
  for await (const { facts, decision } of judge.running()) {
    elements.push(decision.firewall.elements);
    containers.push({
      id: facts.id,
      name: facts.name,
      ports: decision.ports.map((v) => ({
        port: portLabel(v.port),
        containerPort: v.port.containerPort,
        rule: v.rule,
        allow: v.allow === 'any' ? 'any' : v.allow.map((c) => c.text),
        note: v.labelError ?? (v.narrowedByLabel ? 'narrowed by label' : null),
      })),
    });
  }
  const bridges = bridgeOptions(await judge.docker.listBridges(), policy.network.exceptions);
  const drift = await backend.drift(planAll(elements, { defaultDeny: policy.ports.default === 'deny', ...bridges, otherBridges: config.firewall.otherBridges, audit: policy.mode === 'audit' }));
  const relabels = latestByPath(readRelabelRecords(config.state.dir));
  const report: StatusReport = { firewall: { backend: backend.name, inSync: drift === null, drift }, containers, relabels };
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report, paint));
  return 0;
}

/** The report for a person; everything Docker, labels or the kernel supply is `printable` before it is painted. */
export function renderStatus(report: StatusReport, paint: Paint): string {
  const sync = report.firewall.inSync ? paint('green', 'in sync with the policy') : paint('red', `NOT in sync: ${printable(report.firewall.drift ?? '')}`);
  const lines = [`firewall   ${printable(report.firewall.backend)}: ${sync}`, ''];
  if (report.containers.length === 0) lines.push('no running containers');
  for (const c of report.containers) {
    lines.push(`${paint('bold', printable(c.name))} (${printable(c.id.slice(0, 12))})`);
    if (c.ports.length === 0) lines.push('  no published ports');
    for (const p of c.ports) {
      const who = p.allow === 'any' ? paint('yellow', 'anyone') : p.allow.length === 0 ? paint('dim', 'nobody') : printable(p.allow.join(', '));
      lines.push(`  ${printable(p.port)} → ${p.containerPort}  ${who}  [${printable(p.rule ?? 'ports.default')}]${p.note ? `  (${printable(p.note)})` : ''}`);
    }
  }
  lines.push('', ...renderRelabels(report.relabels));
  return `${lines.join('\n')}\n`;
}

function renderRelabels(relabels: readonly RelabelRecord[]): string[] {
  if (relabels.length === 0) return ['SELinux: no relabelled paths recorded'];
  return [
    'SELinux relabels (latest per path)',
    ...relabels.map((r) => {
      const counts = r.counts ? `  ${r.counts.labelled} labelled, ${r.counts.alreadyLabelled} already, ${r.counts.failed} failed` : '';
      const label = r.newLabel === null ? '' : `  ${printable(r.oldLabel ?? '(none)')} → ${printable(r.newLabel)}`;
      return `  ${printable(r.path)}  ${r.outcome}${label}  by ${printable(r.container.name)} (${r.container.id.slice(0, 12)}) at ${r.time}${counts}`;
    }),
  ];
}
