import { judgeViolations, type Decision, type Violation } from '../../src/domain/decision.js';
import type { ContainerFacts } from '../../src/domain/facts.js';
import type { Mode } from '../../src/domain/policy/model.js';

/**
 * A decision with the given parts for enforcer tests (an enforcer applies whatever it is handed);
 * the violations are judged by the domain's own `judgeViolations`, the rest is empty unless given.
 */
export function decisionOf(facts: ContainerFacts, parts: Partial<Omit<Decision, 'violations'>> & { readonly violations?: readonly Violation[]; readonly mode?: Mode } = {}): Decision {
  const { violations = [], mode = 'enforce', ...rest } = parts;
  return {
    containerId: facts.id,
    ports: [],
    firewall: { elements: { containerId: facts.id, claims: [], endpoints: [] }, error: null },
    bridge: null,
    relabel: [],
    storage: [],
    ...judgeViolations(mode, violations),
    ...rest,
  };
}
