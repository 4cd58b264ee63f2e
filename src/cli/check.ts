import { apparmorEnabled } from '../adapters/apparmor/detect.js';
import { withEngineSocket } from '../app/engine-sockets.js';
import { readExecRecord, type ExecRecord } from '../app/exec-record.js';
import type { Config } from '../app/config.js';
import { judgeFor, type Judge } from '../app/judge.js';
import { cisReport } from '../domain/cis/report.js';
import { imageName } from '../domain/image-provenance.js';
import type { Policy } from '../domain/policy/model.js';
import type { Paint, Style } from './colour.js';
import { renderCis } from './cis.js';
import { policyOrReport } from './policy-or-report.js';
import { printable } from './printable.js';

export interface CheckReport {
  readonly policy: { readonly file: string; readonly hash: string; readonly mode: string };
  readonly containers: number;
  /**
   * What `privileged-exec` could see (null when the policy leaves it off): running execs always;
   * finished ones only from the daemon's record (`since` it started), else they are not visible.
   */
  readonly privilegedExecs: { readonly finished: 'recorded' | 'not visible'; readonly since: string | null } | null;
  readonly findings: ReadonlyArray<{
    readonly container: { readonly id: string; readonly name: string; readonly image: string };
    readonly check: string;
    readonly severity: string;
    /** What `dockwarden run` would do now: the check's action, or `alert` in audit mode. */
    readonly action: string;
    readonly message: string;
    readonly details: Readonly<Record<string, unknown>>;
  }>;
}

/**
 * `dockwarden check`: every running container judged once against the policy, as `run` would judge
 * it, with nothing enforced. Needs no daemon. Exit 0 clean, 1 violations, 2 error. `cis`: the same
 * findings grouped by CIS Docker Benchmark item.
 */
export async function checkCommand(config: Config, json: boolean, paint: Paint, cis = false): Promise<number> {
  const read = policyOrReport(config.policy.file);
  if (!read) return 2;
  const policy = withEngineSocket(config, read);
  const execRecord = readExecRecord(config.state.dir);
  const report = await checkRunning(policy, await judgeFor(config, policy, execRecord), execRecord);
  if (cis) {
    const items = cisReport(policy, { apparmor: await apparmorEnabled() }, report.containers, report.findings);
    process.stdout.write(json ? `${JSON.stringify({ policy: report.policy, privilegedExecs: report.privilegedExecs, ...items }, null, 2)}\n` : renderCis(report.policy, items, execsSeen(report), paint));
  } else {
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report, paint));
  }
  return report.findings.length === 0 ? 0 : 1;
}

/** Where relabelling is on, refused relabels are findings too, as the daemon raises them. */
async function checkRunning(policy: Policy, judge: Judge, execRecord: ExecRecord | null): Promise<CheckReport> {
  const findings: Array<CheckReport['findings'][number]> = [];
  let containers = 0;
  for await (const { facts, decision } of judge.running()) {
    containers++;
    for (const v of decision.violations) {
      findings.push({
        container: { id: facts.id, name: facts.name, image: imageName(facts.image) },
        check: v.check,
        severity: v.severity,
        action: v.effective,
        message: v.message,
        details: v.details,
      });
    }
  }
  const privilegedExecs = policy.containers.privilegedExec ? { finished: execRecord ? ('recorded' as const) : ('not visible' as const), since: execRecord?.since ?? null } : null;
  return { policy: { file: policy.file, hash: policy.hash, mode: policy.mode }, containers, privilegedExecs, findings };
}

const HEADER = ['CONTAINER', 'CHECK', 'SEVERITY', 'ACTION', 'WHY'] as const;
const SEVERITY_STYLE: Readonly<Record<string, Style>> = { critical: 'red', high: 'red', medium: 'yellow', low: 'dim' };
const ACTION_STYLE: Readonly<Record<string, Style>> = { kill: 'red', stop: 'red' };

/** The table for a person; every cell is `printable` before it is padded and painted (colour never counts towards widths). */
export function renderCheck(report: CheckReport, paint: Paint): string {
  const summary = `${report.containers} running container${report.containers === 1 ? '' : 's'} checked against ${printable(report.policy.file)} (${report.policy.mode}): `;
  if (report.findings.length === 0) return `${summary}${paint('green', 'no violations')}\n${execsSeen(report)}`;
  const rows = report.findings.map((f) => [`${printable(f.container.name)} (${printable(f.container.id.slice(0, 12))})`, printable(f.check), printable(f.severity), printable(f.action), printable(f.message)]);
  const widths = HEADER.slice(0, -1).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[], style: (i: number, cell: string) => Style | undefined) =>
    cells
      .map((c, i) => {
        const padded = i < widths.length ? c.padEnd(widths[i]!) : c;
        const s = style(i, c);
        return s ? paint(s, c) + padded.slice(c.length) : padded;
      })
      .join('  ')
      .trimEnd();
  const cellStyle = (i: number, cell: string): Style | undefined => (i === 2 ? SEVERITY_STYLE[cell] : i === 3 ? ACTION_STYLE[cell] : undefined);
  const violating = new Set(report.findings.map((f) => f.container.id)).size;
  const count = `${report.findings.length} violation${report.findings.length === 1 ? '' : 's'} in ${violating} container${violating === 1 ? '' : 's'}`;
  return `${[line(HEADER, () => 'bold'), ...rows.map((r) => line(r, cellStyle))].join('\n')}\n\n${summary}${paint('red', count)}\n${execsSeen(report)}`;
}

/** The line saying what `privileged-exec` could see, when it is on; '' when it is off. */
export function execsSeen({ privilegedExecs: seen }: Pick<CheckReport, 'privilegedExecs'>): string {
  if (seen === null) return '';
  return seen.since !== null
    ? `privileged execs: running ones as dockerd lists them, finished ones as the daemon recorded them since ${printable(seen.since)}\n`
    : 'privileged execs: only running ones are seen (no record of a daemon in the state dir: finished ones are not visible)\n';
}
