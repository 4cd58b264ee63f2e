import t from 'tap';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { logEnforcer } from '../../src/app/log-enforcer.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { makeFacts } from '../helpers/facts.js';

const result = parsePolicy('version: 1\ncontainers:\n  capabilities: { forbidden: [SYS_ADMIN], action: kill }\n', 'policy.yaml');
if (!result.ok) throw new Error('bad policy');
const policy = result.policy;

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  return { log, lines };
}

t.test('a judgement is logged when it first appears and when it changes, not at every reconcile', async (t) => {
  const { log, lines } = capture();
  const enforcer = logEnforcer(log);
  const facts = makeFacts();
  await enforcer.apply({ facts, decision: evaluate(policy, facts) }, policy);
  await enforcer.apply({ facts, decision: evaluate(policy, facts) }, policy);
  t.equal(lines.filter((l) => l.msg === 'container judged').length, 1);
  const bad = makeFacts({ capabilities: { ...facts.capabilities, configured: [...facts.capabilities.configured, 'CAP_SYS_ADMIN'], effective: [...(facts.capabilities.effective ?? []), 'CAP_SYS_ADMIN'] } });
  await enforcer.apply({ facts: bad, decision: evaluate(policy, bad) }, policy);
  const changed = lines.filter((l) => l.msg === 'container judged')[1]!;
  t.same(changed.violations, [{ check: 'capabilities', action: 'kill', message: 'holds forbidden capabilities: SYS_ADMIN' }]);
  await enforcer.forget(facts.id);
  t.equal(lines.at(-1)!.msg, 'container gone');
});

t.test('a running container whose process could not be read says it was judged on its configuration', async (t) => {
  const { log, lines } = capture();
  const gone = makeFacts({ capabilities: { ...makeFacts().capabilities, effective: null } });
  await logEnforcer(log).apply({ facts: gone, decision: evaluate(policy, gone) }, policy);
  t.equal(lines[0]!.effectiveCapabilities, 'unread: judged on the configuration');
  const read = makeFacts();
  await logEnforcer(log).apply({ facts: read, decision: evaluate(policy, read) }, policy);
  t.notOk('effectiveCapabilities' in lines[1]!, 'not said when the process was read');
});
