import t from 'tap';
import { BENCHMARK, CIS_ITEMS } from '../../src/domain/cis/catalogue.js';
import { cisReport, NO_APPARMOR, NOT_IN_BUILD, NOT_IN_POLICY, type CisFinding, type CisLine } from '../../src/domain/cis/report.js';
import type { ContainerFacts } from '../../src/domain/facts.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';

function policy(containers: string): Policy {
  const result = parsePolicy(`version: 1\nimages: { default: allow, local: allow }\ncontainers:\n${containers}`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

/** The findings `check` would report for these containers: the one evaluate, flattened. */
const findings = (p: Policy, ...containers: ContainerFacts[]): CisFinding[] =>
  containers.flatMap((facts) =>
    evaluate(p, facts).violations.map((v) => ({ container: { id: facts.id, name: facts.name, image: facts.image.reference }, ...v })),
  );

const byId = (lines: readonly CisLine[]) => new Map(lines.map((l) => [l.id, l]));

const POLICY = policy(`  capabilities: { forbidden: [SYS_ADMIN, NET_ADMIN], action: alert, severity: low }
  privileged: { action: alert }
  host-namespaces: { namespaces: [pid, net], action: alert }
  resource-limits: { require: [memory], action: alert }
  apparmor-unconfined: { action: alert }
`);

t.test('the catalogue: CIS 1.6.0 ids as docker-bench-security numbers them, each once, every §5 item', async (t) => {
  t.equal(BENCHMARK.version, '1.6.0');
  const ids = CIS_ITEMS.map((i) => i.id);
  t.equal(new Set(ids).size, ids.length);
  t.same(
    ids.filter((id) => id.startsWith('5.')),
    Array.from({ length: 32 }, (_, i) => `5.${i + 1}`),
  );
  const titles = new Map(CIS_ITEMS.map((i) => [i.id, i.title]));
  t.equal(titles.get('5.13'), "Ensure that the container's root filesystem is mounted as read only");
  t.equal(titles.get('5.32'), 'Ensure that the Docker socket is not mounted inside any containers');
});

t.test('WARN names each failing container once; PASS when the check is on and nobody fails', async (t) => {
  const web = makeFacts({ id: 'a'.repeat(64), name: 'web', resources: { memory: 1 << 26, pidsLimit: 0, cpus: 0, cpuShares: 0 } });
  const admin = makeFacts({ id: 'b'.repeat(64), name: 'admin', capabilities: { added: ['CAP_SYS_ADMIN'], dropped: [], configured: ['CAP_SYS_ADMIN'], effective: ['CAP_SYS_ADMIN'] } });
  const report = cisReport(POLICY, { apparmor: true }, 2, findings(POLICY, web, admin));
  const items = byId(report.items);
  t.match(items.get('5.4'), { status: 'WARN', check: 'capabilities', reason: null, failing: [{ name: 'admin', severity: 'low', message: /SYS_ADMIN/ }] });
  t.equal(items.get('5.4')!.failing.length, 1);
  t.match(items.get('5.5'), { status: 'PASS', failing: [] });
  t.match(items.get('5.11'), { status: 'WARN', check: 'resource-limits (memory)', failing: [{ name: 'admin' }] });
  t.equal(items.get('5.11')!.failing.length, 1, 'web has a memory limit');
  t.equal(report.containers, 2);
  t.equal(report.counts.WARN, report.items.filter((i) => i.status === 'WARN').length);
});

t.test('a check judging several things: only the part the item asks about counts', async (t) => {
  const hostPid = makeFacts({ name: 'pid-only', hostNamespaces: { pid: true, net: false, ipc: false, uts: false, userns: false, cgroup: false } });
  const items = byId(cisReport(POLICY, { apparmor: true }, 1, findings(POLICY, hostPid)).items);
  t.match(items.get('5.16'), { status: 'WARN', check: 'host-namespaces (pid)', failing: [{ name: 'pid-only' }] });
  t.match(items.get('5.10'), { status: 'PASS', check: 'host-namespaces (net)' });
  // ipc is not in the policy's namespaces: not judged, so not a PASS
  t.match(items.get('5.17'), { status: 'NOTE', reason: NOT_IN_POLICY });
  t.match(items.get('5.12'), { status: 'NOTE', check: 'resource-limits (cpu)', reason: NOT_IN_POLICY });
});

t.test('a check the policy leaves off is NOTE, never PASS; one this build lacks says so; unseeable items give the reason', async (t) => {
  const items = byId(cisReport(POLICY, { apparmor: true }, 1, findings(POLICY, makeFacts())).items);
  t.match(items.get('5.26'), { status: 'NOTE', check: 'no-new-privileges', reason: NOT_IN_POLICY });
  t.match(items.get('5.32'), { status: 'NOTE', check: 'docker-socket', reason: NOT_IN_POLICY });
  t.match(items.get('5.7'), { status: 'NOTE', check: null, reason: /no check/ });
  t.match(items.get('4.5'), { status: 'NOTE', check: null, reason: /client/ });
  // the image check always judges: images.default decides what no rule matches
  t.match(items.get('4.2'), { status: 'PASS', check: 'image' });
  for (const line of items.values()) if (line.status === 'NOTE' && line.check !== null && line.reason !== NOT_IN_POLICY) t.equal(line.reason, NOT_IN_BUILD, line.id);
});

t.test('no AppArmor on the host: 5.2 is N/A whatever the containers say; with AppArmor, unconfined is WARN', async (t) => {
  const unconfined = makeFacts({ name: 'loose', security: { seccomp: 'default', apparmor: 'unconfined', noNewPrivileges: false, labelOptions: [], seccompProfile: null } });
  const without = byId(cisReport(POLICY, { apparmor: false }, 1, findings(POLICY, unconfined)).items);
  t.match(without.get('5.2'), { status: 'N/A', reason: NO_APPARMOR, failing: [] });
  const withIt = byId(cisReport(POLICY, { apparmor: true }, 1, findings(POLICY, unconfined)).items);
  t.match(withIt.get('5.2'), { status: 'WARN', failing: [{ name: 'loose' }] });
});

t.test('5.12 CPU priority: --cpus, a quota or --cpu-shares other than the default weight count', async (t) => {
  const p = policy('  resource-limits: { require: [cpu], action: alert }\n');
  const cpu = (cpus: number, cpuShares: number) => makeFacts({ id: `${cpus}-${cpuShares}`, name: `cpus=${cpus} shares=${cpuShares}`, resources: { memory: 0, pidsLimit: 0, cpus, cpuShares } });
  const line = byId(cisReport(p, { apparmor: true }, 5, findings(p, cpu(0, 0), cpu(0, 1024), cpu(0, 512), cpu(0.5, 0), cpu(0, 2048))).items).get('5.12')!;
  t.same(
    line.failing.map((c) => c.name),
    ['cpus=0 shares=0', 'cpus=0 shares=1024'],
  );
});

t.test('the image hygiene items are judged when the policy has them under images, noted when not', async (t) => {
  const result = parsePolicy('version: 1\nimages: { default: allow, local: allow, healthcheck: { action: alert } }\n', 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  const withHygiene = result.policy;
  const plain = makeFacts();
  const items = byId(cisReport(withHygiene, { apparmor: true }, 1, findings(withHygiene, plain)).items);
  t.equal(items.get('4.6')!.status, 'WARN', 'an image without HEALTHCHECK is found');
  t.match(items.get('5.28'), { status: 'NOTE', check: 'images.latest-tag', reason: NOT_IN_POLICY }, 'images.latest-tag is off in this policy');
  const none = byId(cisReport(POLICY, { apparmor: true }, 1, findings(POLICY, plain)).items);
  t.match(none.get('4.6'), { status: 'NOTE', reason: NOT_IN_POLICY });
});
