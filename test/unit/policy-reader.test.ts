import { spawn } from 'node:child_process';
import { truncateSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import t from 'tap';
import { loadPolicyFile } from '../../src/domain/policy/load.js';
import { policyFileVersion, readPolicyOffLoop, startPolicyReader } from '../../src/app/policy-reader.js';
import { PolicyReloader } from '../../src/app/policy-reloader.js';
import { CLI } from '../helpers/daemon.js';

const CONFIG = resolve(import.meta.dirname, '../../config');

/** Globs compared by pattern (functions never compare equal). */
const comparable = (value: unknown): unknown =>
  JSON.parse(JSON.stringify(value, (_, v: unknown) => (v instanceof Map ? { map: [...v] } : typeof v === 'function' ? 'fn' : v)));

t.test('a policy read in a worker is the policy read in place, globs compiled again', async (t) => {
  for (const name of ['policy.yaml', 'policy.strict.yaml']) {
    const file = `${CONFIG}/${name}`;
    const inPlace = loadPolicyFile(file);
    const offLoop = await readPolicyOffLoop(file);
    t.ok(inPlace.ok && offLoop.ok, name);
    if (!inPlace.ok || !offLoop.ok) continue;
    t.same(comparable(offLoop.policy), comparable(inPlace.policy), name);
    const rule = offLoop.policy.ports.rules.find((r) => r.match.container !== undefined);
    if (rule) t.equal(rule.match.container!.test('no such name at all'), inPlace.policy.ports.rules[rule.index]!.match.container!.test('no such name at all'));
  }
});

t.test('a rejected policy gives the same located errors; a read past its time limit is given up', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'version: 1\nmode: x\n' });
  const offLoop = await readPolicyOffLoop(`${dir}/bad.yaml`);
  t.same(offLoop, loadPolicyFile(`${dir}/bad.yaml`));
  // No worker starts, let alone reads, within a millisecond.
  const late = await readPolicyOffLoop(`${dir}/bad.yaml`, 1);
  t.same(late.ok ? [] : late.errors.map((e) => e.message), ['reading the policy took longer than 0.001 s; given up']);
});

t.test('a file read half written (truncated, its write not yet landed) is read again, not rejected nor put in force', async (t) => {
  const good = 'version: 1\nports: { default: deny }\n';
  const edit = 'version: 1\nports: { default: allow }\n';
  const dir = t.testdir({ 'policy.yaml': good });
  const file = `${dir}/policy.yaml`;
  const inForce = loadPolicyFile(file);
  if (!inForce.ok) throw new Error('the fixture is a valid policy');
  let hash = inForce.policy.hash;
  const rejections: string[] = [];
  const reads: string[] = [];
  // The editor's write, split where the daemon can meet it: the file is truncated, the worker reads it
  // (real file, real worker), and the text lands before the read's answer is judged.
  truncateSync(file);
  const reloader = new PolicyReloader({
    read: async () => {
      const result = await readPolicyOffLoop(file);
      reads.push(result.ok ? 'ok' : result.errors[0]!.message);
      if (reads.length === 1) writeFileSync(file, edit);
      return result;
    },
    accepted: async (next) => void (hash = next.policy.hash),
    rejected: (result) => void rejections.push(...result.errors.map((e) => e.message)),
    currentHash: () => hash,
    fileVersion: () => policyFileVersion(file),
    debounceMs: 0,
  });
  await reloader.reload();
  // Until something is judged: the edit put in force, or a rejection (10 s at most).
  const deadline = Date.now() + 10_000;
  while (hash === inForce.policy.hash && rejections.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.match(reads[0], /the document is empty/, 'the first read met the half-written file');
  t.same(rejections, [], 'no rejection for it: no alert, nothing in the journal');
  t.equal(hash, (loadPolicyFile(file) as { policy: { hash: string } }).policy.hash, "the admin's edit is in force");
});

t.test('a reader started before its file is known (the daemon starts it before its config) reads the file it is then given', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'version: 1\nmode: x\n' });
  const read = startPolicyReader();
  // Meanwhile its worker has started and loaded the validator: it waits for the file's name alone.
  await new Promise((r) => setTimeout(r, 300));
  t.same(await read(`${dir}/bad.yaml`), loadPolicyFile(`${dir}/bad.yaml`));
  const good = await startPolicyReader()(`${CONFIG}/policy.yaml`);
  t.ok(good.ok, 'a good policy too');
});

t.test('`dockwarden run` with an invalid config exits, its policy reader waiting for a file it is never given', async (t) => {
  const dir = t.testdir({ 'config.yaml': 'logg: {}\n' });
  const child = spawn(process.execPath, [CLI, 'run', '--config', `${dir}/config.yaml`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
  clearTimeout(timer);
  t.same([code, signal], [2, null], 'exit 2, not killed after 15 s');
  t.match(stderr, /invalid configuration:\n.*config\.yaml:1:1: logg: unknown setting/);
});
