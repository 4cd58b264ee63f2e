import t from 'tap';
import { runtimeViolations } from '../../src/domain/checks/runtime.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { makeFacts } from '../helpers/facts.js';

const policy = (severity: string) => {
  const result = parsePolicy(`version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN], action: alert, severity: ${severity} }\n`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
};
const ADDED = ['CAP_SYS_ADMIN'] as const;
const configured = (effective: readonly (typeof ADDED)[number][] | null) =>
  makeFacts({ capabilities: { added: [...ADDED], dropped: [], configured: [...ADDED], effective: effective === null ? null : [...effective] } });

t.test('a forbidden capability only in the bounding set (no process holds it): said so, one severity lower', async (t) => {
  const [v] = runtimeViolations(policy('high').containers, configured([]));
  t.match(v, {
    check: 'capabilities',
    severity: 'medium',
    message: 'may gain forbidden capabilities: SYS_ADMIN (in its bounding set; no process holds them)',
    details: { capabilities: ['CAP_SYS_ADMIN'], configured: ['CAP_SYS_ADMIN'], effective: [], boundingOnly: true },
  });
  t.equal(runtimeViolations(policy('critical').containers, configured([]))[0]?.severity, 'high');
  t.equal(runtimeViolations(policy('low').containers, configured([]))[0]?.severity, 'low', 'nothing is below low');
});

t.test('a process holding it: the policy severity, "holds"', async (t) => {
  const [v] = runtimeViolations(policy('high').containers, configured(['CAP_SYS_ADMIN']));
  t.match(v, { severity: 'high', message: 'holds forbidden capabilities: SYS_ADMIN' });
  t.notOk('boundingOnly' in v!.details);
});

t.test('a process that cannot be read: judged on the configuration at the policy severity (fail-safe)', async (t) => {
  const facts = { ...configured(null), processes: [] };
  const [v] = runtimeViolations(policy('high').containers, facts);
  t.match(v, { severity: 'high', message: 'holds forbidden capabilities: SYS_ADMIN', details: { effective: null } });
});
