import { connectEngine } from '../adapters/docker/engine.js';
import { signatureVerifier, withSignatureVerdicts } from '../app/signature-verdicts.js';
import { engineSockets } from '../app/engine-sockets.js';
import type { Config } from '../app/config.js';
import { judgeImage, ruleLabel, type ImageJudgement } from '../domain/checks/image.js';
import type { PortVerdict } from '../domain/decision.js';
import { evaluate, matchingPortRules } from '../domain/evaluate.js';
import type { ContainerFacts } from '../domain/facts.js';
import { imageName } from '../domain/image-provenance.js';
import { portLabel } from '../domain/port-label.js';
import type { Policy } from '../domain/policy/model.js';
import { policyOrReport } from './policy-or-report.js';
import { printable } from './printable.js';

/** `dockwarden policy explain CONTAINER`: what the policy decides for one container, and why. */
export async function explainCommand(config: Config, container: string, json: boolean): Promise<number> {
  const policy = policyOrReport(config.policy.file);
  if (!policy) return 2;
  const engine = connectEngine({ socketPath: config.docker.socket, timeoutMs: config.docker.timeoutMs, sockets: () => engineSockets(config, policy) });
  // Signatures are looked up afresh (the daemon's verdict cache is its own).
  const docker = withSignatureVerdicts(engine, signatureVerifier({ stateDir: null }), () => policy);
  const facts = await docker.readFacts(container);
  if (!facts) {
    process.stderr.write(`dockwarden: no such container: ${printable(container)}\n`);
    return 2;
  }
  const report = explain(policy, facts);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderExplanation(report));
  return 0;
}

export interface Explanation {
  readonly container: { readonly id: string; readonly name: string; readonly image: string; readonly running: boolean };
  readonly policy: { readonly file: string; readonly hash: string; readonly mode: string };
  readonly ports: ReadonlyArray<{
    readonly port: string;
    readonly containerPort: number;
    /** Every rule that matches, in order; the first decides. */
    readonly matchingRules: readonly string[];
    readonly decidedBy: string;
    readonly allow: 'any' | readonly string[];
  }>;
  /** The image provenance decision: what was judged under which names, and which rule decided each. */
  readonly image: {
    /** `Config.Image` as given. */
    readonly reference: string;
    readonly referencedBy: ImageJudgement['referencedBy'];
    /** `reference` (a repo digest backs it), `repo digests` (every name they prove), `local` (none), `invalid`. */
    readonly judgedAs: ImageJudgement['judgedAs'];
    readonly excusedBy: string | null;
    readonly names: ReadonlyArray<{
      readonly name: string;
      /** Every rule whose pattern matches, most specific first; the first decides. */
      readonly matchingRules: readonly string[];
      readonly decidedBy: string;
      readonly allowed: boolean;
      readonly reason: string | null;
      readonly why: string;
    }>;
  };
  readonly violations: ReadonlyArray<{ readonly check: string; readonly severity: string; readonly action: string; readonly message: string }>;
}

export function explain(policy: Policy, facts: ContainerFacts): Explanation {
  const decision = evaluate(policy, facts);
  return {
    container: { id: facts.id, name: facts.name, image: imageName(facts.image), running: facts.state.running },
    policy: { file: policy.file, hash: policy.hash, mode: policy.mode },
    ports: decision.ports.map((verdict) => ({
      port: portLabel(verdict.port),
      containerPort: verdict.port.containerPort,
      matchingRules: matchingPortRules(policy.ports, facts, verdict.port).map((r) => `${r.name} (ports.rules[${r.index}])`),
      decidedBy: verdict.rule ?? `ports.default: ${policy.ports.default}`,
      allow: allowText(verdict),
    })),
    image: imageExplanation(policy, facts),
    violations: decision.violations.map(({ check, severity, action, message }) => ({
      check,
      severity,
      action: policy.mode === 'audit' ? `alert (audit mode; enforce would ${action})` : action,
      message,
    })),
  };
}

function renderExplanation(report: Explanation): string {
  const lines = [
    `container  ${printable(report.container.name)} (${report.container.id.slice(0, 12)})${report.container.running ? '' : ', not running'}`,
    `image      ${printable(report.container.image)}`,
    `policy     ${report.policy.file} (${report.policy.mode}, sha256 ${report.policy.hash.slice(0, 12)})`,
    '',
    report.ports.length === 0 ? 'ports      none published' : 'ports',
  ];
  for (const p of report.ports) {
    lines.push(`  ${p.port} → ${p.containerPort}: ${p.allow === 'any' ? 'anyone' : p.allow.length === 0 ? 'nobody' : p.allow.join(', ')}`);
    lines.push(`      decided by ${p.decidedBy}`);
    if (p.matchingRules.length > 1) lines.push(`      also matching, not deciding: ${p.matchingRules.slice(1).join(', ')}`);
  }
  const image = report.image;
  const judgedAs = image.judgedAs === 'reference' ? '' : `, judged as ${image.judgedAs === 'repo digests' ? 'what its repo digests prove' : image.judgedAs}`;
  lines.push('', `images     referenced by ${image.referencedBy} ${printable(JSON.stringify(image.reference))}${judgedAs}${image.excusedBy ? `, excused by ${image.excusedBy}` : ''}`);
  for (const n of image.names) {
    lines.push(`  ${printable(n.name)}: ${n.allowed ? 'allowed' : `refused (${n.reason})`}: ${printable(n.why)}`);
    if (n.matchingRules.length > 1) lines.push(`      also matching, less specific: ${n.matchingRules.slice(1).join(', ')}`);
  }
  lines.push('', report.violations.length === 0 ? 'violations none' : 'violations');
  for (const v of report.violations) lines.push(`  ${v.check} [${v.severity}] → ${v.action}: ${printable(v.message)}`);
  return `${lines.join('\n')}\n`;
}

function imageExplanation(policy: Policy, facts: ContainerFacts): Explanation['image'] {
  const judgement = judgeImage(policy.images, facts);
  return {
    reference: judgement.reference,
    referencedBy: judgement.referencedBy,
    judgedAs: judgement.judgedAs,
    excusedBy: judgement.exception === null ? null : `images.exceptions[${judgement.exception}]`,
    names: judgement.names.map((n) => ({
      name: n.name,
      matchingRules: n.matchingRules.map((rule) => `${ruleLabel(rule)} (${rule.match.pattern})`),
      decidedBy: n.decidedBy ?? 'nothing: the reference does not parse',
      allowed: n.refusal === null,
      reason: n.refusal,
      why: n.why,
    })),
  };
}

function allowText(verdict: PortVerdict): 'any' | string[] {
  return verdict.allow === 'any' ? 'any' : verdict.allow.map((c) => c.text);
}
