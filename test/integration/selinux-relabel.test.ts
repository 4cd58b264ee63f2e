import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import t from 'tap';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { readLabel, relabelTree } from '../../src/adapters/selinux/native.js';
import { readRelabelRecords, appendRelabelRecord } from '../../src/app/relabel-record.js';
import { selinuxEnforcer } from '../../src/app/selinux-enforcer.js';
import { hostReader } from '../../src/app/volumes-setup.js';
import { hostFactsReader } from '../../src/app/host-facts.js';
import type { Violation } from '../../src/domain/decision.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { FALLBACK_PRIVATE_TYPE_LEVEL } from '../../src/domain/selinux/plan.js';
import { docker, DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { bindReadOnly, labelsBelow, makeTree, mountFs, scratchRoot } from '../helpers/label-tree.js';

/**
 * The relabel enforcer with real parts: real containers on the test dockerd, their facts as the
 * daemon reads them, the native walker on this machine's ext4, the state file. Forced mode, as on
 * any host without SELinux (dockerd gives no MountLabel or ProcessLabel here).
 */
const SUITE = 'dw-test.suite=selinux';
const SHARED = 'system_u:object_r:container_file_t:s0';
const engine = connectEngine({ socketPath: DOCKER_SOCKET, timeoutMs: 10_000 });
const root = scratchRoot();
const outside = scratchRoot();
const stateDir = join(root, '.state');
let seq = 0;

t.teardown(async () => {
  await removeTestContainers(SUITE);
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

function policy(relabel: 'shared' | 'private', roots: string[] = [join(root, 'vols')]): Policy {
  const result = parsePolicy(`version: 1\nvolumes:\n  selinux:\n    relabel: ${relabel}\n    roots: ${JSON.stringify(roots)}\n`, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

function enforcer() {
  const lines: Array<Record<string, unknown> & { msg: string }> = [];
  const log = pino({ level: 'debug' }, new Writable({ write: (chunk, _, done) => (lines.push(JSON.parse(String(chunk))), done()) }));
  const host = hostFactsReader({ relabel: hostReader(engine, true), veths: null });
  const enforce = selinuxEnforcer({
    relabelTree,
    record: (record) => appendRelabelRecord(stateDir, record),
    registerFcontext: null,
    log,
  });
  /** The refused relabels of the last sync's decision. */
  let refusals: Violation[] = [];
  const apply = async (id: string, p: Policy) => {
    const facts = (await engine.readFacts(id))!;
    const decision = evaluate(p, facts, await host.read(facts, p));
    refusals = decision.violations.filter((v) => v.check === 'selinux-relabel');
    await enforce.apply({ facts, decision }, p);
  };
  return { apply, lines, messages: () => lines.map((l) => l.msg), refusals: () => refusals };
}

const run = (binds: string[], extra: Parameters<typeof runContainer>[0] = {}) =>
  runContainer({ name: `dw-sel-${process.pid}-${++seq}`, labels: { 'dw-test.suite': 'selinux' }, cmd: ['sleep', '300'], hostConfig: { Binds: binds }, ...extra });

const reasons = (e: ReturnType<typeof enforcer>) => e.refusals().map((v) => (v.details as { reason: string }).reason);

t.test('a bind mount under a root is labelled recursively; symlinks untouched; a second run changes nothing', async (t) => {
  const dir = join(root, 'vols', 'web');
  const entries = makeTree(dir, 2, 3);
  writeFileSync(join(outside, 'secret'), '');
  symlinkSync(join(outside, 'secret'), join(dir, 'planted'));
  const id = await run([`${dir}:/data`]);
  const first = enforcer();
  await first.apply(id, policy('shared'));
  const labels = labelsBelow(dir);
  t.equal(labels.size, entries + 2);
  for (const [path, label] of labels) t.equal(label, SHARED, path);
  t.equal(readLabel(join(outside, 'secret')), null, "the planted link's target is not labelled");
  const done = first.lines.find((l) => l.msg === 'SELinux relabel done');
  t.match(done, { path: dir, label: 'container_file_t:s0', newLabel: SHARED, oldLabel: null, beforeStart: false, counts: { labelled: entries + 2, failed: 0 } });
  t.match(readRelabelRecords(stateDir).at(-1), { path: dir, outcome: 'relabelled', container: { id }, oldLabel: null, newLabel: SHARED });

  // Same start again (a reconcile): not walked again. A daemon restart (fresh enforcer): walked, nothing written.
  await first.apply(id, policy('shared'));
  t.equal(first.lines.filter((l) => l.msg.startsWith('SELinux relabel')).length, 1);
  const records = readRelabelRecords(stateDir).length;
  const second = enforcer();
  await second.apply(id, policy('shared'));
  t.match(second.lines.find((l) => l.msg === 'SELinux relabel: already labelled'), { counts: { labelled: 0, alreadyLabelled: entries + 2 } });
  t.equal(readRelabelRecords(stateDir).length, records, 'nothing changed, nothing recorded');
});

t.test('outside the roots and on refused paths: nothing changes, a violation is raised', async (t) => {
  const escape = join(root, 'vols', 'escape');
  symlinkSync(outside, escape);
  mkdirSync(join(outside, 'data'), { recursive: true });
  const etcBefore = readLabel('/etc');
  const id = await run([`${outside}/data:/out`, '/etc:/host-etc:ro', `${escape}:/escape`]);
  const e = enforcer();
  await e.apply(id, policy('shared'));
  t.same(reasons(e).sort(), ['outside-roots', 'outside-roots', 'system-path']);
  const refused = e.refusals().find((v) => v.message === 'SELinux relabel refused: the mount is a system directory');
  t.match(refused, { check: 'selinux-relabel', severity: 'high', details: { realSource: '/etc', destination: '/host-etc' } });
  t.notMatch(refused!.message, /\/etc/, 'the path is a detail, never in the message');
  t.equal(readLabel('/etc'), etcBefore);
  t.equal(readLabel(outside), null);
  t.equal(readLabel(join(outside, 'data')), null);
  t.equal(e.lines.filter((l) => l.msg === 'SELinux relabel done').length, 0);
  const refusedRecords = () => readRelabelRecords(stateDir).filter((r) => r.outcome === 'refused' && r.container.id === id);
  t.ok(refusedRecords().some((r) => r.path === '/etc'));
  // The same refusals at the next sync are not recorded again.
  const recorded = refusedRecords().length;
  await e.apply(id, policy('shared'));
  t.equal(reasons(e).length, 3);
  t.equal(refusedRecords().length, recorded);
});

t.test("a local volume's _data is labelled when the volumes dir is a root", async (t) => {
  const dataRoot = await engine.dataRoot();
  const name = `dw-sel-vol-${process.pid}`;
  t.teardown(async () => {
    await removeTestContainers(SUITE);
    await docker.getVolume(name).remove().catch(() => {});
  });
  const id = await run([`${name}:/v`]);
  const e = enforcer();
  await e.apply(id, policy('shared', [join(dataRoot, 'volumes')]));
  t.equal(readLabel(join(dataRoot, 'volumes', name, '_data')), SHARED);
  t.equal(readLabel(join(dataRoot, 'volumes', name)), null, 'the volume dir itself is not a mount');
});

t.test('private: the first running container gets the label; a second one on the same path is refused', async (t) => {
  const dir = join(root, 'vols', 'db');
  makeTree(dir, 1, 2);
  const p = policy('private');
  const a = await run([`${dir}:/data`]);
  const first = enforcer();
  await first.apply(a, p);
  const label = `system_u:object_r:${FALLBACK_PRIVATE_TYPE_LEVEL}`;
  for (const [path, l] of labelsBelow(dir)) t.equal(l, label, path);
  t.ok(first.messages().includes('SELinux relabel: the container has no MountLabel; private used the fixed fallback level'));

  const b = await run([`${join(root, 'vols')}:/all`]);
  const second = enforcer();
  await second.apply(b, p);
  t.same(reasons(second), ['shared-private']);
  t.equal(readLabel(join(root, 'vols')), null, "the parent of A's path is not relabelled either");

  // Once A is gone, B may have it.
  await docker.getContainer(a).remove({ force: true });
  await second.apply(b, p);
  t.equal(readLabel(join(root, 'vols')), label);
});

t.test('privileged containers are unconfined: left alone', async (t) => {
  const dir = join(root, 'vols', 'priv');
  mkdirSync(dir, { recursive: true });
  // The test runtime dw-host-caps lets this host start privileged containers (see runtime-checks.test.ts).
  const id = await run([], { hostConfig: { Binds: [`${dir}:/data`], Privileged: true, Runtime: 'dw-host-caps' } });
  const e = enforcer();
  await e.apply(id, policy('shared'));
  t.same(e.lines, []);
  t.equal(readLabel(dir), null);
});

t.test('a huge tree through a real container', async (t) => {
  const dir = join(root, 'vols', 'huge');
  t.teardown(mountFs('tmpfs', dir)); // this machine's ext4 creates files ~40× slower
  const entries = makeTree(dir, 50, 999);
  const id = await run([`${dir}:/data`]);
  const e = enforcer();
  await e.apply(id, policy('shared'));
  t.match(e.lines.find((l) => l.msg === 'SELinux relabel done'), { counts: { visited: entries + 1, labelled: entries + 1, failed: 0 } });
  t.equal(readLabel(join(dir, 'd49', 'f998')), SHARED);
});

t.test('ENOTSUP, read-only and partial failures are reported with advice, counts and paths, and recorded', async (t) => {
  const nolabels = join(root, 'vols', 'ramfs');
  t.teardown(mountFs('ramfs', nolabels));
  const source = join(root, 'ro-source');
  makeTree(source, 1, 1);
  const readOnly = join(root, 'vols', 'ro');
  t.teardown(bindReadOnly(source, readOnly));
  const partial = join(root, 'vols', 'partial');
  makeTree(partial, 1, 3);
  const stuck = join(partial, 'd0', 'f1');
  execFileSync('chattr', ['+i', stuck]); // immutable: even root's lsetxattr gets EPERM
  t.teardown(() => execFileSync('chattr', ['-i', stuck]));

  const id = await run([`${nolabels}:/a`, `${readOnly}:/b`, `${partial}:/c`]);
  const e = enforcer();
  await e.apply(id, policy('shared'));
  const line = (path: string) => e.lines.find((l) => l.path === path && l.msg.startsWith('SELinux relabel'));
  t.match(line(nolabels), { level: 40, msg: 'SELinux relabel: cannot label here', rootError: 'EOPNOTSUPP', advice: /context=.*virt_use_nfs/ });
  t.match(line(readOnly), { level: 40, msg: 'SELinux relabel: cannot label here', rootError: 'EROFS', advice: /read-only/ });
  t.match(line(partial), { level: 40, msg: 'SELinux relabel incomplete: some entries could not be labelled', counts: { labelled: 4, failed: 1 }, errors: [{ path: stuck, code: 'EPERM' }] });
  t.equal(readLabel(join(partial, 'd0', 'f0')), SHARED, 'the rest is labelled');
  const records = readRelabelRecords(stateDir).filter((r) => r.container.id === id);
  t.same(records.map((r) => r.outcome).sort(), ['partial', 'read-only', 'unsupported']);
});

t.test('a root given through a symlink is compared as its real path', async (t) => {
  const real = join(root, 'real-root');
  mkdirSync(join(real, 'app'), { recursive: true });
  const alias = join(outside, 'alias-root');
  symlinkSync(real, alias);
  const id = await run([`${alias}/app:/data`]);
  const e = enforcer();
  await e.apply(id, policy('shared', [alias]));
  t.equal(readLabel(join(real, 'app')), SHARED);
  t.same(reasons(e), []);
  // A root that resolves to a system directory is no root at all.
  const sneaky = join(outside, 'to-usr');
  symlinkSync('/usr', sneaky);
  const other = await run(['/usr/share/doc:/doc:ro']);
  const f = enforcer();
  await f.apply(other, policy('shared', [sneaky]));
  t.same(reasons(f), ['outside-roots']);
  t.equal(readLabel('/usr/share/doc'), null);
});
