import t from 'tap';
import { evaluate } from '../../src/domain/evaluate.js';
import { ALLOW_LABEL, narrow, parseAllowLabel } from '../../src/domain/label-narrowing.js';
import { cidrContains, parseCidr } from '../../src/domain/net/cidr.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Cidr, Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

const cidr = (text: string): Cidr => parseCidr(text)!;
const texts = (list: 'any' | readonly Cidr[]) => (list === 'any' ? 'any' : list.map((c) => c.text).sort());

function policy(labels: 'narrow' | 'ignore'): Policy {
  const result = parsePolicy(
    `version: 1
sources:
  office: [198.51.100.0/26, "2001:db8:1::/48"]
ports:
  labels: ${labels}
  rules:
    - { name: office, match: { port: 3000/tcp }, allow: [office] }
    - { name: public, match: { port: 443/tcp }, allow: [any] }
`,
    'policy.yaml',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

const verdict = (p: Policy, label: string | undefined, hostPort: number) =>
  evaluate(p, makeFacts({ labels: label === undefined ? {} : { [ALLOW_LABEL]: label }, ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort, containerPort: 80 }] })).ports[0]!;

t.test('intersection of CIDR sets: the smaller block of every nested pair', async (t) => {
  t.same(texts(narrow([cidr('198.51.100.0/24')], [cidr('198.51.100.7'), cidr('10.0.0.0/8')])), ['198.51.100.7/32']);
  t.same(texts(narrow([cidr('198.51.100.0/28'), cidr('198.51.100.64/28')], [cidr('198.51.100.0/24')])), ['198.51.100.0/28', '198.51.100.64/28']);
  t.same(texts(narrow('any', [cidr('198.51.100.0/24')])), ['198.51.100.0/24']);
  t.same(texts(narrow([cidr('198.51.100.0/24')], [cidr('2001:db8::/32')])), [], 'families never intersect');
  t.same(texts(narrow([], [cidr('0.0.0.0/0')])), [], 'nothing stays nothing');
});

t.test('a label can never widen: every result lies inside what the policy allowed', async (t) => {
  const allowed = [cidr('198.51.100.0/26'), cidr('198.51.100.128/30'), cidr('2001:db8:1::/48')];
  const labels = ['0.0.0.0/0', '198.51.100.0/24', '198.51.100.7', '198.51.100.129', '::/0', '2001:db8::/32', '2001:db8:1:2::/64', '203.0.113.1'];
  for (const a of labels) {
    for (const b of labels) {
      const result = narrow(allowed, [cidr(a), cidr(b)]);
      for (const block of result) t.ok(allowed.some((g) => cidrContains(g, block)), `${a} + ${b} → ${block.text} stays inside the policy`);
    }
  }
});

t.test('the label narrows a rule, and "any"', async (t) => {
  const p = policy('narrow');
  t.same(texts(verdict(p, '198.51.100.7, 198.51.100.200', 3000).allow), ['198.51.100.7/32'], '198.51.100.200 is outside office');
  t.same(texts(verdict(p, 'office', 443).allow), ['198.51.100.0/26', '2001:db8:1::/48'], 'set names work in labels');
  t.same(texts(verdict(p, '0.0.0.0/0', 3000).allow), ['198.51.100.0/26'], 'asking for everything gets what the policy gives');
  const narrowed = verdict(p, '198.51.100.7', 443);
  t.same(texts(narrowed.allow), ['198.51.100.7/32']);
  t.equal(narrowed.narrowedByLabel, true);
  t.equal(narrowed.rule, 'public');
});

t.test('an unreadable label closes the port instead of falling back to the policy', async (t) => {
  const p = policy('narrow');
  for (const [label, error] of [
    ['', `${ALLOW_LABEL} is empty`],
    ['198.51.100.7, nonsense', `${ALLOW_LABEL}: "nonsense" is not an address, CIDR or source set`],
    ['198.51.100.7; drop table', `${ALLOW_LABEL}: "198.51.100.7;" is not an address, CIDR or source set`],
    [Array(300).fill('198.51.100.7').join(','), `${ALLOW_LABEL} has more than 256 entries`],
  ] as const) {
    const v = verdict(p, label, 443);
    t.same(v.allow, [], JSON.stringify(label.slice(0, 30)));
    t.equal(v.labelError, error);
  }
});

t.test('ports.labels: ignore, or no label: the policy alone decides', async (t) => {
  t.same(texts(verdict(policy('ignore'), '198.51.100.7', 443).allow), 'any');
  const plain = verdict(policy('narrow'), undefined, 3000);
  t.same(texts(plain.allow), ['198.51.100.0/26', '2001:db8:1::/48']);
  t.equal(plain.narrowedByLabel, false);
  t.equal(plain.labelError, null);
});

t.test('parseAllowLabel accepts commas and spaces and bounds its work', async (t) => {
  const p = policy('narrow');
  const parsed = parseAllowLabel(' 198.51.100.7,2001:db8::1  office ', p);
  t.ok(parsed.ok);
  if (parsed.ok) t.same(texts(parsed.cidrs), ['198.51.100.0/26', '198.51.100.7/32', '2001:db8:1::/48', '2001:db8::1/128']);
});
