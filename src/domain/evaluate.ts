import type { Decision, PortVerdict } from './decision.js';
import type { ContainerFacts, PublishedPort } from './facts.js';
import type { Cidr, Policy, PortRule, PortsPolicy, SourceRef } from './policy/model.js';
import { selectorMatches } from './selector.js';

/** The whole of dockwarden's judgement of one container: pure, no I/O, same input → same output. */
export function evaluate(policy: Policy, facts: ContainerFacts): Decision {
  return {
    containerId: facts.id,
    ports: facts.ports.map((port) => portVerdict(policy.ports, facts, port)),
    violations: [],
  };
}

/** Every rule that matches the port, in policy order; the first one decides. */
export function matchingPortRules(ports: PortsPolicy, facts: ContainerFacts, port: PublishedPort): PortRule[] {
  return ports.rules.filter((rule) => selectorMatches(rule.match, facts, port));
}

function portVerdict(ports: PortsPolicy, facts: ContainerFacts, port: PublishedPort): PortVerdict {
  const rule = ports.rules.find((r) => selectorMatches(r.match, facts, port));
  if (!rule) return { port, rule: null, allow: ports.default === 'allow' ? 'any' : [], narrowedByLabel: false };
  return { port, rule: rule.name, allow: resolveAllow(rule.allow), narrowedByLabel: false };
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
