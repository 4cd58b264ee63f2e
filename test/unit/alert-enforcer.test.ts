import t from 'tap';
import { alertEnforcer } from '../../src/app/alerts/alert-enforcer.js';
import type { AlertInput } from '../../src/app/alerts/alerter.js';
import type { Decision, Violation } from '../../src/domain/decision.js';
import { decisionOf } from '../helpers/decision.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const policyOf = (mode: 'enforce' | 'audit'): Policy => {
  const r = parsePolicy(`version: 1\nmode: ${mode}\n`, 'p.yaml');
  if (!r.ok) throw new Error('test policy invalid');
  return r.policy;
};
const ENFORCE = policyOf('enforce');
const AUDIT = policyOf('audit');
const judged = (policy: Policy, ...violations: Violation[]): Decision => decisionOf(facts, { violations, mode: policy.mode });
const facts = makeFacts({ name: 'web\n"]', image: { reference: 'evil:1', id: 'sha256:1', repoTags: [], repoDigests: [] } });
const privileged: Violation = { check: 'privileged', severity: 'critical', action: 'kill', message: 'container runs privileged', details: {} };
const rootUser: Violation = { check: 'root-user', severity: 'low', action: 'alert', message: 'container runs as root', details: { user: '' } };


t.test('one alert per new violation, not again while it persists', async (t) => {
  const raised: AlertInput[] = [];
  const enforcer = alertEnforcer((input) => raised.push(input));
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged) }, ENFORCE);
  t.same(raised, [{
    check: 'privileged', severity: 'critical', action: 'kill', message: 'container runs privileged',
    container: { id: facts.id, name: 'web\n"]', image: 'evil:1' }, details: {},
  }]);
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged) }, ENFORCE); // the periodic reconcile
  t.equal(raised.length, 1, 'the same violation is not news');
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged, rootUser) }, ENFORCE);
  t.same(raised.map((r) => r.check), ['privileged', 'root-user'], 'only the new one');
  await enforcer.apply({ facts, decision: judged(ENFORCE, { ...privileged, severity: 'high' }, rootUser) }, ENFORCE);
  t.equal(raised.length, 2, 'a severity edit in the policy is not a new finding');
});

t.test('gone and back, forgotten and back, and a change of what is done: alerted again', async (t) => {
  const raised: AlertInput[] = [];
  const enforcer = alertEnforcer((input) => raised.push(input));
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged) }, ENFORCE);
  await enforcer.apply({ facts, decision: judged(ENFORCE) }, ENFORCE);
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged) }, ENFORCE);
  t.equal(raised.length, 2, 'resolved then back');
  await enforcer.forget(facts.id);
  await enforcer.apply({ facts, decision: judged(ENFORCE, privileged) }, ENFORCE);
  t.equal(raised.length, 3, 'forgotten then back');
  await enforcer.apply({ facts, decision: judged(AUDIT, privileged) }, AUDIT);
  t.same(raised.map((r) => r.action), ['kill', 'kill', 'kill', 'alert'], 'audit mode: the action taken is alert');
  await enforcer.apply({ facts: { ...facts, id: 'other' }, decision: judged(AUDIT, privileged) }, AUDIT);
  t.equal(raised.length, 5, 'containers are tracked apart');
});
