import { connectEngine } from '../adapters/docker/engine.js';
import { engineSockets } from '../app/engine-sockets.js';
import type { Config } from '../app/config.js';
import type { RelabelHostReader } from '../app/relabel-host.js';
import { hostReader, relabelSetting } from '../app/volumes-setup.js';
import { effectiveAction } from '../domain/decision.js';
import { evaluate } from '../domain/evaluate.js';
import { imageName } from '../domain/image-provenance.js';
import type { Policy } from '../domain/policy/model.js';
import { planRelabel } from '../domain/selinux/plan.js';
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
export async function checkCommand(config: Config, json: boolean): Promise<number> {
  const policy = policyOrReport(config.policy.file);
  if (!policy) return 2;
  const docker = connectEngine({ socketPath: config.docker.socket, timeoutMs: config.docker.timeoutMs, sockets: () => engineSockets(config, policy) });
  const relabel = await relabelSetting(config);
  const report = await checkRunning(policy, docker, relabel.on ? hostReader(docker, relabel.forced) : null);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderCheck(report));
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

function renderCheck(report: CheckReport): string {
  const summary = `${report.containers} running container${report.containers === 1 ? '' : 's'} checked against ${report.policy.file} (${report.policy.mode}): `;
  if (report.findings.length === 0) return `${summary}no violations\n`;
  const rows = report.findings.map((f) => [`${printable(f.container.name)} (${f.container.id.slice(0, 12)})`, f.check, f.severity, f.action, printable(f.message)]);
  const widths = HEADER.slice(0, -1).map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i < widths.length ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd();
  const violating = new Set(report.findings.map((f) => f.container.id)).size;
  return `${[line(HEADER), ...rows.map(line)].join('\n')}\n\n${summary}${report.findings.length} violation${report.findings.length === 1 ? '' : 's'} in ${violating} container${violating === 1 ? '' : 's'}\n`;
}
