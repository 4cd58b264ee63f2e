import { connectEngine } from '../adapters/docker/engine.js';
import { signatureVerifier, withSignatureVerdicts } from '../app/signature-verdicts.js';
import { engineSockets } from '../app/engine-sockets.js';
import type { Config } from '../app/config.js';
import type { RelabelHostReader } from '../app/relabel-host.js';
import { hostReader, relabelSetting } from '../app/volumes-setup.js';
import { effectiveAction } from '../domain/decision.js';
import { evaluate } from '../domain/evaluate.js';
import { imageName } from '../domain/image-provenance.js';
import type { Policy } from '../domain/policy/model.js';
import { planRelabel } from '../domain/selinux/plan.js';
import type { Paint, Style } from './colour.js';
import { policyOrReport } from './policy-or-report.js';
import { printable } from './printable.js';

export interface CheckReport {
  readonly policy: { readonly file: string; readonly hash: string; readonly mode: string };
  readonly containers: number;
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
 * it, with nothing enforced. Needs no daemon. Exit 0 clean, 1 violations, 2 error.
 */
export async function checkCommand(config: Config, json: boolean, paint: Paint): Promise<number> {
  const policy = policyOrReport(config.policy.file);
  if (!policy) return 2;
  const engine = connectEngine({ socketPath: config.docker.socket, timeoutMs: config.docker.timeoutMs, sockets: () => engineSockets(config, policy) });
  // Signatures are looked up afresh (the daemon's verdict cache is its own).
  const docker = withSignatureVerdicts(engine, signatureVerifier({ stateDir: null }), () => policy);
  const relabel = await relabelSetting(config);
  const report = await checkRunning(policy, docker, relabel.on ? hostReader(docker, relabel.forced) : null);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report, paint));
  return report.findings.length === 0 ? 0 : 1;
}

/** `relabelHost`: where relabelling is on, refused relabels are findings too, as the daemon raises them. */
async function checkRunning(policy: Policy, docker: ReturnType<typeof connectEngine>, relabelHost: RelabelHostReader | null): Promise<CheckReport> {
  const findings: Array<CheckReport['findings'][number]> = [];
  let containers = 0;
  for (const id of await docker.listContainerIds()) {
    const facts = await docker.readFacts(id);
    if (!facts?.state.running) continue;
    containers++;
    const { relabel } = policy.volumes.selinux;
    const refusals = relabelHost && relabel !== 'off' ? planRelabel(policy.volumes, facts, await relabelHost(facts, policy, relabel === 'private')).violations : [];
    for (const v of [...evaluate(policy, facts).violations, ...refusals]) {
      findings.push({
        container: { id: facts.id, name: facts.name, image: imageName(facts.image) },
        check: v.check,
        severity: v.severity,
        action: effectiveAction(policy.mode, v.action),
        message: v.message,
        details: v.details,
      });
    }
  }
  return { policy: { file: policy.file, hash: policy.hash, mode: policy.mode }, containers, findings };
}

const HEADER = ['CONTAINER', 'CHECK', 'SEVERITY', 'ACTION', 'WHY'] as const;
const SEVERITY_STYLE: Readonly<Record<string, Style>> = { critical: 'red', high: 'red', medium: 'yellow', low: 'dim' };
const ACTION_STYLE: Readonly<Record<string, Style>> = { kill: 'red', stop: 'red' };

/** The table for a person; every cell is `printable` before it is padded and painted (colour never counts towards widths). */
export function renderCheck(report: CheckReport, paint: Paint): string {
  const summary = `${report.containers} running container${report.containers === 1 ? '' : 's'} checked against ${printable(report.policy.file)} (${report.policy.mode}): `;
  if (report.findings.length === 0) return `${summary}${paint('green', 'no violations')}\n`;
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
  return `${[line(HEADER, () => 'bold'), ...rows.map((r) => line(r, cellStyle))].join('\n')}\n\n${summary}${paint('red', count)}\n`;
}
