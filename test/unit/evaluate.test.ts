import t from 'tap';
import { evaluate, resolveAllow } from '../../src/domain/evaluate.js';
import type { PublishedPort } from '../../src/domain/facts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

function policy(text: string): Policy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

const tcp = (hostPort: number, containerPort = 80, hostIp = '0.0.0.0'): PublishedPort => ({ proto: 'tcp', hostIp, hostPort, containerPort });

const RULES = policy(`version: 1
sources:
  office: [198.51.100.0/28, "2001:db8:1::/48"]
ports:
  default: deny
  rules:
    - name: public-web
      match: { image: "docker.io/library/nginx:*", port: 443/tcp }
      allow: [any]
    - name: grafana
      match: { container: "grafana*", port: 3000/tcp }
      allow: [office, 198.51.100.77]
    - name: range
      match: { port: 8000-8100/udp }
      allow: [198.51.100.0/24]
    - name: by-label-and-inner-port
      match: { label: { tier: "front*" }, container-port: 80/tcp }
      allow: [office]
`);

const verdicts = (p: Policy, ...args: Parameters<typeof makeFacts>) =>
  evaluate(p, makeFacts(...args)).ports.map((v) => ({ rule: v.rule, allow: v.allow === 'any' ? 'any' : v.allow.map((c) => c.text) }));

t.test('first matching rule wins, by image and published host port', async (t) => {
  t.same(verdicts(RULES, { ports: [tcp(443, 443)] }), [{ rule: 'public-web', allow: 'any' }]);
  // same image, another port: no rule → default deny
  t.same(verdicts(RULES, { ports: [tcp(8443, 443)] }), [{ rule: null, allow: [] }]);
  // an unofficial nginx does not match the docker.io/library glob
  t.same(verdicts(RULES, { image: { reference: 'someone/nginx:1', id: 'x', repoTags: [], repoDigests: [`someone/nginx@sha256:${'1'.repeat(64)}`] }, ports: [tcp(443, 443)] }), [{ rule: null, allow: [] }]);
  // nor does a local image tagged nginx: a tag is not provenance
  t.same(verdicts(RULES, { image: { reference: 'nginx:1.27', id: 'x', repoTags: ['nginx:1.27'], repoDigests: [] }, ports: [tcp(443, 443)] }), [{ rule: null, allow: [] }]);
});

t.test('named sets and addresses resolve to exact blocks', async (t) => {
  t.same(verdicts(RULES, { name: 'grafana-1', ports: [tcp(3000, 3000)] }), [
    { rule: 'grafana', allow: ['198.51.100.0/28', '2001:db8:1::/48', '198.51.100.77/32'] },
  ]);
  t.same(verdicts(RULES, { name: 'not-grafana', ports: [tcp(3000, 3000)] }), [{ rule: null, allow: [] }]);
});

t.test('port ranges, protocols, labels and container ports', async (t) => {
  const udp = (port: number): PublishedPort => ({ proto: 'udp', hostIp: '0.0.0.0', hostPort: port, containerPort: 53 });
  t.same(verdicts(RULES, { ports: [udp(8000), udp(8100), udp(8101)] }).map((v) => v.rule), ['range', 'range', null]);
  t.same(verdicts(RULES, { ports: [tcp(8050)] }).map((v) => v.rule), [null], 'tcp is not udp');
  t.same(verdicts(RULES, { labels: { tier: 'frontend' }, ports: [tcp(9999, 80)] }).map((v) => v.rule), ['by-label-and-inner-port']);
  t.same(verdicts(RULES, { labels: { tier: 'backend' }, ports: [tcp(9999, 80)] }).map((v) => v.rule), [null]);
  t.same(verdicts(RULES, { labels: { tier: 'frontend' }, ports: [tcp(9999, 81)] }).map((v) => v.rule), [null]);
});

t.test('each published port is judged on its own', async (t) => {
  const p = verdicts(RULES, { name: 'grafana', ports: [tcp(3000, 3000), tcp(3001, 3001)] });
  t.same(p.map((v) => v.rule), ['grafana', null]);
});

t.test('ports.default: allow lets unmatched ports through; no ports, no verdicts', async (t) => {
  const open = policy('version: 1\nports:\n  default: allow\n');
  t.same(verdicts(open, { ports: [tcp(80)] }), [{ rule: null, allow: 'any' }]);
  t.same(verdicts(open, {}), []);
});

t.test('any anywhere in an allow list means anyone; duplicates collapse', async (t) => {
  const cidr = { family: 4 as const, address: '198.51.100.0', prefix: 24, text: '198.51.100.0/24' };
  t.equal(resolveAllow([{ kind: 'cidr', cidr }, { kind: 'any' }]), 'any');
  t.same(resolveAllow([{ kind: 'cidr', cidr }, { kind: 'set', name: 's', cidrs: [cidr] }]), [cidr]);
  t.same(resolveAllow([]), []);
});

t.test('evaluation is pure: same input, same decision, input untouched', async (t) => {
  const facts = makeFacts({ name: 'grafana', ports: [tcp(3000, 3000)] });
  const frozen = JSON.stringify(facts);
  t.same(evaluate(RULES, facts), evaluate(RULES, facts));
  t.equal(JSON.stringify(facts), frozen);
});
