import t from 'tap';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import type { FirewallBackend } from '../../src/adapters/firewall/backend.js';
import { FirewallEnforcer } from '../../src/app/firewall-enforcer.js';
import { FirewallStateFile, readFirewallState } from '../../src/app/firewall-state.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { diffElements, isEmpty, type ElementDiff, type FirewallPlan } from '../../src/domain/firewall/plan.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { makeFacts } from '../helpers/facts.js';

/**
 * FAKE, by necessity: nft and iptables refusing a well-formed transaction, or hanging, cannot be
 * produced on demand against the real kernel. Everything else about the backends is tested for real
 * (test/integration/nft-apply, iptables-apply, ports). This records calls and fails when told to.
 */
class FaultInjectingBackend implements FirewallBackend {
  readonly name = 'nftables' as const;
  readonly nfTables = { tables: [], shared: false };
  /** Compares whole plans: a read that overlapped a transaction is redone (the real nftables backend's `changing` is tested in nft-apply). */
  readonly readsWhileChanging = false;
  readonly calls: string[] = [];
  failUpdates = 0;
  failReplaces = 0;
  kernel: FirewallPlan | null = null;
  /** While set, a drift read waits for it (a read of a big table takes seconds), once. */
  holdDriftRead: Promise<void> | null = null;
  async replace(plan: FirewallPlan) {
    this.calls.push(`replace ${plan.allows.length}`);
    if (this.failReplaces-- > 0) throw new Error('nft: Could not process rule: Device or resource busy');
    this.kernel = plan;
  }
  /** Applies the delta element by element, as nft would, so a wrong delta shows up as drift. */
  async update(diff: ElementDiff) {
    this.calls.push(`update +${diff.add.allows.length} -${diff.delete.allows.length}`);
    if (this.failUpdates-- > 0) throw new Error('nft: Could not process rule: No such file or directory');
    const kernel = this.kernel!;
    const without = <T,>(list: readonly T[], gone: readonly T[]) => list.filter((e) => !gone.some((g) => JSON.stringify(g) === JSON.stringify(e)));
    this.kernel = {
      ...kernel,
      ports: [...without(kernel.ports, diff.delete.ports), ...diff.add.ports],
      allows: [...without(kernel.allows, diff.delete.allows), ...diff.add.allows],
      endpoints: [...without(kernel.endpoints, diff.delete.endpoints), ...diff.add.endpoints],
    };
  }
  async drift(expected: FirewallPlan) {
    this.calls.push('drift');
    const hold = this.holdDriftRead;
    this.holdDriftRead = null;
    if (hold) await hold;
    if (!this.kernel) return 'missing';
    const diff = diffElements(this.kernel, expected);
    return isEmpty(diff.add) && isEmpty(diff.delete) && this.kernel.defaultDeny === expected.defaultDeny ? null : 'differs';
  }
  async installed() {
    return this.kernel !== null;
  }
  async remove() {
    this.kernel = null;
  }
  async wouldHaveDropped() {
    return [];
  }
  async show() {
    return '';
  }
  installedPlan(): FirewallPlan | null {
    return this.kernel;
  }
}

const policy = (() => {
  const r = parsePolicy('version: 1\nports:\n  rules:\n    - { name: web, match: { port: 8080/tcp }, allow: [198.51.100.10] }\n', 'p.yaml');
  if (!r.ok) throw new Error('bad policy');
  return r.policy;
})();

function tracked(id: string, hostPort = 8080) {
  const facts = makeFacts({ id, name: id, ports: [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort, containerPort: 80 }] });
  return { facts, decision: evaluate(policy, facts) };
}

function setup() {
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const backend = new FaultInjectingBackend();
  const enforcer = new FirewallEnforcer(backend, log, { defaultDeny: true, bridges: ['docker0'] });
  return { backend, enforcer, lines };
}

t.test('first change replaces, later ones are element updates, forgetting removes', async (t) => {
  const { backend, enforcer } = setup();
  await enforcer.apply(tracked('a'));
  await enforcer.apply(tracked('b', 8081));
  await enforcer.apply(tracked('b', 8081)); // unchanged: no call at all
  await enforcer.forget('a');
  t.same(backend.calls, ['replace 1', 'update +0 -0', 'update +0 -1']);
  t.same(backend.installedPlan()?.ports.map((p) => p.port), [8081]);
  t.equal(await enforcer.repairDrift(), null, 'the deltas left the kernel exactly as planned');
});

t.test('a failed update falls back to an atomic replace', async (t) => {
  const { backend, enforcer, lines } = setup();
  await enforcer.apply(tracked('a'));
  backend.failUpdates = 1;
  await enforcer.apply(tracked('b', 8081));
  t.same(backend.calls, ['replace 1', 'update +0 -0', 'replace 1']);
  t.ok(lines.some((l) => l.msg === 'firewall update failed; replacing the whole ruleset'));
  t.notOk(lines.some((l) => l.msg === 'firewall drift repaired'), 'our ruleset was there: not drift');
  t.same(backend.installedPlan()?.ports.map((p) => p.port).sort(), [8080, 8081]);
});

t.test('an update that finds our ruleset gone is drift: said, reported and repaired as a check would, unjudged ports closed', async (t) => {
  const backend = new FaultInjectingBackend();
  const repaired: string[] = [];
  const lines: Array<{ msg: string }> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const served = [{ proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 9090 }];
  const enforcer = new FirewallEnforcer(backend, log, { defaultDeny: true, bridges: ['docker0'] }, undefined, (drift) => repaired.push(drift), undefined, async () => served);
  await enforcer.apply(tracked('a'));
  backend.kernel = null; // `nft flush ruleset`, met first by the next container's update
  backend.failUpdates = 1;
  await enforcer.apply(tracked('b', 8081));
  t.same(repaired, ['the ruleset dockwarden applied is missing'], 'reported (the daemon alerts with it)');
  t.ok(lines.some((l) => l.msg === 'firewall drift repaired'));
  t.same(backend.installedPlan()?.ports.map((p) => p.port).sort(), [8080, 8081, 9090], 'rebuilt, with the port docker-proxy serves unjudged closed');
  t.equal(await enforcer.repairDrift(), null, 'the check that follows finds nothing more');
  t.same(repaired.length, 1, 'once');
});

t.test('a failed replace is retried, then reported; the next change replaces again', async (t) => {
  const { backend, enforcer, lines } = setup();
  backend.failReplaces = 2;
  await enforcer.apply(tracked('a'));
  t.same(backend.calls, ['replace 1', 'replace 1', 'replace 1'], 'retried until it took');
  t.equal(lines.filter((l) => l.msg === 'firewall replace failed; retrying').length, 2);

  backend.failReplaces = 10;
  backend.failUpdates = 1;
  await t.rejects(enforcer.apply(tracked('b', 8081)), /Device or resource busy/, 'after the retries the error reaches the caller');
  backend.failReplaces = 0;
  backend.calls.length = 0;
  await enforcer.apply(tracked('c', 8082));
  t.same(backend.calls, ['replace 1'], 'state unknown after a failure: the next flush is a replace, never an update');
});

t.test('drift is repaired by a replace, and logged', async (t) => {
  const { backend, enforcer, lines } = setup();
  await enforcer.apply(tracked('a'));
  backend.kernel = null; // someone ran `nft flush ruleset`
  t.equal(await enforcer.repairDrift(), 'missing');
  t.same(backend.installedPlan()?.ports.map((p) => p.port), [8080]);
  t.ok(lines.some((l) => l.msg === 'firewall drift repaired'));
  t.equal(await enforcer.repairDrift(), null, 'nothing to repair the second time');
});

t.test('a repaired drift is reported to the callback (the daemon alerts with it), once', async (t) => {
  const backend = new FaultInjectingBackend();
  const repaired: string[] = [];
  const enforcer = new FirewallEnforcer(backend, pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, undefined, (drift) => repaired.push(drift));
  await enforcer.apply(tracked('a'));
  t.equal(await enforcer.repairDrift(), null);
  t.same(repaired, [], 'no drift, no report');
  backend.kernel = null;
  await enforcer.repairDrift();
  await enforcer.repairDrift();
  t.same(repaired, ['missing']);
});

t.test('a drift check reads the kernel outside the queue: changes meanwhile are applied at once, and the read is redone', async (t) => {
  const { backend, enforcer } = setup();
  await enforcer.apply(tracked('a'));
  let release = () => {};
  backend.holdDriftRead = new Promise((resolve) => (release = resolve));
  const check = enforcer.repairDrift();
  await enforcer.apply(tracked('b', 9000)); // would wait for the whole drift read if the check held the queue
  t.same(backend.installedPlan()?.ports.map((p) => p.port).sort(), [8080, 9000], 'applied while the read was still running');
  release();
  t.equal(await check, null, 'the read that overlapped a transaction is not trusted as is: redone, no drift');
  t.same(backend.calls.filter((c) => c === 'drift').length, 2);
  t.same(backend.calls.filter((c) => c.startsWith('replace')).length, 1, 'nothing replaced');
});

t.test('changes during a flush are batched into the next one', async (t) => {
  const { backend, enforcer } = setup();
  await Promise.all(['a', 'b', 'c', 'd'].map((id, i) => enforcer.apply(tracked(id, 9000 + i))));
  t.ok(backend.calls.length <= 2, `4 containers, ${backend.calls.length} transactions`);
  t.same(backend.installedPlan()?.ports.map((p) => p.port).sort(), [9000, 9001, 9002, 9003]);
  t.equal(await enforcer.repairDrift(), null);
});

t.test('the baseline goes in only when nothing of ours is installed', async (t) => {
  const { backend, enforcer } = setup();
  t.equal(await enforcer.baseline(), true);
  t.same(backend.installedPlan()?.ports, []);
  t.equal(await enforcer.baseline(), false);
});

t.test('over a ruleset of an earlier run: nothing is applied until the start-up reconcile has judged every container', async (t) => {
  const { backend, enforcer, lines } = setup();
  const earlier = new FaultInjectingBackend();
  await new FirewallEnforcer(earlier, pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }).apply(tracked('a'));
  backend.kernel = earlier.kernel;
  t.equal(await enforcer.baseline(), false, 'the earlier ruleset is adopted');
  await enforcer.apply(tracked('b', 8081));
  await enforcer.configure({ bridges: ['docker0', 'br-0123456789ab'] });
  t.equal(await enforcer.repairDrift(), null, 'a drift check meanwhile is no drift');
  t.same(backend.calls, [], 'and the earlier ruleset stays exactly as it was');
  await enforcer.apply(tracked('a'));
  await enforcer.reconciled();
  t.same(backend.calls, ['replace 1'], 'every container judged: one replace (one allowed source in all)');
  t.same(backend.kernel, enforcer.plan());
  t.ok(lines.some((l) => l.msg === 'start-up ruleset replaced after the start-up reconcile'));
  await enforcer.reconciled();
  await enforcer.apply(tracked('c', 8082));
  t.same(backend.calls, ['replace 1', 'update +0 -0'], 'from then on, changes as usual: an element update');
});

t.test('a baseline on an empty kernel closes the ports the last run saw, until every container is judged', async (t) => {
  const { backend, enforcer } = setup();
  const known = tracked('a').facts;
  const earlier = new FaultInjectingBackend();
  const stateDir = t.testdir();
  const last = new FirewallEnforcer(earlier, pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, new FirewallStateFile(stateDir));
  await last.apply({ facts: known, decision: evaluate(policy, known) });
  const ports = earlier.kernel!.ports;
  t.same(readFirewallState(stateDir)?.ports, ports, 'the published ports are saved with each change of them');

  t.equal(await enforcer.baseline(ports), true);
  t.same(backend.kernel!.ports, ports, 'the baseline holds them');
  t.same(backend.kernel!.allows, [], 'with no source allowed');
  await enforcer.apply(tracked('b', 8081));
  t.same(backend.calls, ['replace 0'], 'nothing else until the start-up reconcile is done');
  await enforcer.reconciled();
  t.same(backend.calls, ['replace 0', 'replace 0']);
  t.same(backend.kernel, enforcer.plan(), 'then the judged plan replaces it');

  const allowBackend = new FaultInjectingBackend();
  const allowing = new FirewallEnforcer(allowBackend, pino({ level: 'silent' }), { defaultDeny: false, bridges: [] });
  await allowing.baseline(ports);
  t.same(allowBackend.kernel!.ports, [], 'under ports.default: allow an unjudged port is open, so nothing is closed');
});

t.test('the boot baseline\'s state file holds a published port before the transaction that lets anyone reach it', async (t) => {
  const stateDir = t.testdir();
  const backend = new FaultInjectingBackend();
  const onDisk: number[][] = [];
  const update = backend.update.bind(backend);
  backend.update = async (diff) => {
    onDisk.push((readFirewallState(stateDir)?.ports ?? []).map((p) => p.port));
    return update(diff);
  };
  const enforcer = new FirewallEnforcer(backend, pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, new FirewallStateFile(stateDir));
  await enforcer.apply(tracked('a'));
  await enforcer.apply(tracked('b', 8081));
  await enforcer.apply(tracked('c', 8082));
  t.same(backend.calls, ['replace 1', 'update +0 -0', 'update +0 -0']);
  t.same(onDisk, [[8080, 8081], [8080, 8081, 8082]], 'each update found its port already saved');
  await enforcer.forget('b');
  t.same(readFirewallState(stateDir)?.ports.map((p) => p.port), [8080, 8081, 8082], 'a port gone stays saved (closes too much at boot, never too little)');
});

t.test('a change of options during the start-up reconcile keeps, in the state file, the ports the boot baseline closes', async (t) => {
  // The last run saw 8080 and 8081; this start-up has judged only the container publishing 8082 when
  // Docker's bridges are read. A crash now must not leave a file that would open 8080/8081 at the next boot.
  const stateDir = t.testdir();
  const earlier = new FirewallEnforcer(new FaultInjectingBackend(), pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, new FirewallStateFile(stateDir));
  await earlier.apply(tracked('a'));
  await earlier.apply(tracked('b', 8081));
  const known = readFirewallState(stateDir)!.ports;
  const enforcer = new FirewallEnforcer(new FaultInjectingBackend(), pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, new FirewallStateFile(stateDir));
  await enforcer.baseline(known);
  await enforcer.apply(tracked('c', 8082));
  await enforcer.configure({ bridges: ['docker0', 'br-0123456789ab'] });
  const saved = readFirewallState(stateDir)!;
  t.same(saved.bridges, ['br-0123456789ab', 'docker0'], 'the new options are saved');
  t.same([...new Set(saved.ports.map((p) => p.port))].sort(), [8080, 8081, 8082], 'with the ports still closed by the baseline');
  await enforcer.reconciled();
  t.same(readFirewallState(stateDir)!.ports.map((p) => p.port), [8082], 'once every container is judged, the file holds what is published');
});

t.test('a drift repair closes to everyone the ports docker-proxy serves that no judgement claims, until one does', async (t) => {
  const backend = new FaultInjectingBackend();
  let served = [
    { proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 9090 },
    { proto: 'tcp' as const, hostIp: '0.0.0.0', hostPort: 8080 },
    { proto: 'tcp' as const, hostIp: '::', hostPort: 8080 },
  ];
  const enforcer = new FirewallEnforcer(backend, pino({ level: 'silent' }), { defaultDeny: true, bridges: ['docker0'] }, undefined, undefined, undefined, async () => served);
  await enforcer.apply(tracked('z', 9090)); // judged: no rule for 9090, nobody allowed
  const ports = () => backend.installedPlan()!.ports.map((p) => `${p.hostAddr.text} ${p.port}`).sort();
  const allowed = () => backend.installedPlan()!.allows.map((a) => `${a.port} ${a.source.text}`).sort();
  t.same(ports(), ['0.0.0.0/0 9090'], 'no repair yet: only what is judged');

  backend.kernel = null; // `nft flush ruleset`: Docker's DNAT went too, docker-proxy serves 8080 unjudged
  t.equal(await enforcer.repairDrift(), 'missing');
  t.same(ports(), ['0.0.0.0/0 8080', '0.0.0.0/0 9090', '::/0 8080'], 'the repair closes 8080 (both families) to everyone');
  t.same(allowed(), [], 'and lets no one in');

  await enforcer.apply(tracked('a'));
  t.same(allowed(), ['8080 198.51.100.10/32'], 'judged: its IPv4 claim replaces the closing one, so its allowance counts (merged with it, nobody would be allowed)');
  t.same(ports(), ['0.0.0.0/0 8080', '0.0.0.0/0 9090', '::/0 8080'], 'its IPv6 binding, not claimed, stays closed');

  served = [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 9090 }];
  await enforcer.forget('a');
  t.same(ports(), ['0.0.0.0/0 9090'], 'gone, and its docker-proxy with it: the IPv6 port closed until judged goes too');
  t.equal(await enforcer.repairDrift(), null, 'the kernel holds exactly what is desired');
});

t.test('under ports.default: allow a repair closes nothing more', async (t) => {
  const backend = new FaultInjectingBackend();
  let asked = 0;
  const enforcer = new FirewallEnforcer(backend, pino({ level: 'silent' }), { defaultDeny: false, bridges: ['docker0'] }, undefined, undefined, undefined, async () => (asked++, [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8081 }]));
  await enforcer.apply(tracked('a'));
  backend.kernel = null;
  await enforcer.repairDrift();
  t.same(backend.installedPlan()!.ports.map((p) => p.port), [8080]);
  t.equal(asked, 0, 'docker-proxy is not even looked at');
});

t.test('repairNow: the in-queue check and replace without a read beside first', async (t) => {
  const { backend, enforcer } = setup();
  await enforcer.apply(tracked('a'));
  backend.kernel = null;
  backend.calls.length = 0;
  t.equal(await enforcer.repairNow(), 'missing');
  t.same(backend.calls, ['drift', 'replace 1'], 'one read (in the queue), then the replace');
});

t.test('dockerd\'s cgroup: a new one (a new id, as when systemd makes it again) replaces the chains; the same one, or none twice, does not', async (t) => {
  const { backend, enforcer } = setup();
  await enforcer.apply(tracked('a'));
  const service = { mount: '', path: 'system.slice/docker.service', id: 10 };
  await enforcer.configure({ engineCgroup: service });
  t.same(backend.installedPlan()?.engineCgroup, service, 'the cgroup reaches the plan installed');
  await enforcer.configure({ engineCgroup: { ...service } });
  await enforcer.configure({ bridges: ['docker0'] }); // another option, unchanged: the cgroup stays
  t.same(backend.calls, ['replace 1', 'replace 1'], 'read again unchanged: nothing written');
  await enforcer.configure({ engineCgroup: { ...service, id: 11 } });
  t.same(backend.installedPlan()?.engineCgroup?.id, 11, 'dockerd restarted: the same path under a new id, loaded again');
  await enforcer.configure({ engineCgroup: undefined });
  t.equal(backend.installedPlan()?.engineCgroup, undefined, 'none usable now: the rule goes');
  await enforcer.configure({ engineCgroup: undefined });
  t.same(backend.calls, ['replace 1', 'replace 1', 'replace 1', 'replace 1']);
});
