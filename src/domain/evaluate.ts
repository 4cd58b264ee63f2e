import { BridgeInputError, planPorts } from './bridge/ports.js';
import { runtimeViolations } from './checks/runtime.js';
import { judgeViolations, type Decision, type PortVerdict } from './decision.js';
import type { ContainerFacts, PublishedPort } from './facts.js';
import { isFirewallInputError, planContainer } from './firewall/plan.js';
import { NO_HOST_FACTS, type HostFacts } from './host-facts.js';
import type { Cidr, Policy, PortRule, PortsPolicy, SourceRef } from './policy/model.js';
import { imageViolations } from './checks/image.js';
import { ALLOW_LABEL, narrow, parseAllowLabel } from './label-narrowing.js';
import { selectorMatches } from './selector.js';
import { planRelabel } from './selinux/plan.js';
import { storageDirectoriesFor } from './volumes/storage.js';

/**
 * The whole of dockwarden's judgement of one container: pure, no I/O, same input → same output.
 * The daemon, `check`, `status`, `explain` and the gate all call it; enforcers apply its parts.
 */
export function evaluate(policy: Policy, facts: ContainerFacts, host: HostFacts = NO_HOST_FACTS): Decision {
  const ports = facts.ports.map((port) => narrowByLabel(policy, facts, portVerdict(policy.ports, facts, port)));
  const relabel = host.relabel === null ? null : planRelabel(policy.volumes, facts, host.relabel);
  const found = [...runtimeViolations(policy.containers, facts), ...imageViolations(policy.images, facts), ...(relabel?.violations ?? [])];
  return {
    containerId: facts.id,
    ports,
    ...judgeViolations(policy.mode, found),
    firewall: firewallPart(facts, ports),
    bridge: bridgePart(policy, facts, host),
    relabel: relabel?.ops ?? [],
    storage: storageDirectoriesFor(policy.volumes, facts),
  };
}

/** Docker gave something the ruleset cannot hold (a bad address or port): the container is left out, its ports closed by the baseline. */
function firewallPart(facts: ContainerFacts, ports: readonly PortVerdict[]): Decision['firewall'] {
  try {
    return { elements: planContainer(facts, { containerId: facts.id, ports }), error: null };
  } catch (error) {
    if (!isFirewallInputError(error)) throw error;
    return { elements: { containerId: facts.id, claims: [], endpoints: [] }, error: error.message };
  }
}

function bridgePart(policy: Policy, facts: ContainerFacts, host: HostFacts): Decision['bridge'] {
  const veths = host.veths;
  if (veths === null) return null;
  if ('error' in veths) return { error: veths.error };
  try {
    return { ports: planPorts(facts, policy.network, veths) };
  } catch (error) {
    if (!(error instanceof BridgeInputError)) throw error;
    return { error: error.message };
  }
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
