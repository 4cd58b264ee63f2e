import { runtimeViolations } from './checks/runtime.js';
import type { Decision, PortVerdict } from './decision.js';
import type { ContainerFacts, PublishedPort } from './facts.js';
import type { Cidr, Policy, PortRule, PortsPolicy, SourceRef } from './policy/model.js';
import { imageViolations } from './checks/image.js';
import { ALLOW_LABEL, narrow, parseAllowLabel } from './label-narrowing.js';
import { selectorMatches } from './selector.js';

/** The whole of dockwarden's judgement of one container: pure, no I/O, same input → same output. */
export function evaluate(policy: Policy, facts: ContainerFacts): Decision {
  return {
    containerId: facts.id,
    ports: facts.ports.map((port) => narrowByLabel(policy, facts, portVerdict(policy.ports, facts, port))),
    violations: [...runtimeViolations(policy.containers, facts), ...imageViolations(policy.images, facts)],
  };
}

/** Every rule that matches the port, in policy order; the first one decides. */
export function matchingPortRules(ports: PortsPolicy, facts: ContainerFacts, port: PublishedPort): PortRule[] {
  return ports.rules.filter((rule) => selectorMatches(rule.match, facts, port));
}

function portVerdict(ports: PortsPolicy, facts: ContainerFacts, port: PublishedPort): PortVerdict {
  const rule = ports.rules.find((r) => selectorMatches(r.match, facts, port));
  const allow = rule ? resolveAllow(rule.allow) : ports.default === 'allow' ? 'any' : [];
  return { port, rule: rule?.name ?? null, allow, narrowedByLabel: false, labelError: null };
}

/** With `ports.labels: narrow`, the container's own label may take sources away, never add any. */
function narrowByLabel(policy: Policy, facts: ContainerFacts, verdict: PortVerdict): PortVerdict {
  const value = facts.labels[ALLOW_LABEL];
  if (policy.ports.labels === 'ignore' || value === undefined) return verdict;
  const label = parseAllowLabel(value, policy);
  if (!label.ok) return { ...verdict, allow: [], narrowedByLabel: true, labelError: label.error };
  return { ...verdict, allow: narrow(verdict.allow, label.cidrs), narrowedByLabel: true };
}

/** `any` anywhere in the list wins; otherwise the union of the blocks, each once. */
export function resolveAllow(refs: readonly SourceRef[]): 'any' | Cidr[] {
  if (refs.some((ref) => ref.kind === 'any')) return 'any';
  const byText = new Map<string, Cidr>();
  for (const ref of refs) {
    for (const cidr of ref.kind === 'set' ? ref.cidrs : ref.kind === 'cidr' ? [ref.cidr] : []) byText.set(cidr.text, cidr);
  }
  return [...byText.values()];
}
