import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EXEC_RECORD_FILE, MAX_RECORDED_EXECS, execRecorder, readExecRecord, withRecordedExecs } from '../../src/app/exec-record.js';
import type { ExecFacts } from '../../src/domain/facts.js';
import { decisionOf } from '../helpers/decision.js';
import { makeFacts } from '../helpers/facts.js';

const exec = (id: string, privileged = true, command = ['sh']): ExecFacts => ({ id, privileged, command, user: '', running: true, uids: null });
const tracked = (execs: ExecFacts[], id = 'c1') => {
  const facts = makeFacts({ id, execs });
  return { facts, decision: decisionOf(facts) };
};
const policy = {} as never;

t.test('a new daemon starts an empty record; privileged execs are recorded once, others never', async (t) => {
  const dir = t.testdir({ [EXEC_RECORD_FILE]: JSON.stringify({ since: 'earlier', execs: [{ time: 't', containerId: 'c0', exec: exec('old') }] }) });
  const recorder = execRecorder(dir, () => new Date('2026-12-02T04:00:00Z'));
  t.same(readExecRecord(dir), { since: '2026-12-02T04:00:00.000Z', execs: [] });
  await recorder.apply(tracked([exec('e1'), exec('health', false)]), policy);
  await recorder.apply(tracked([exec('e1')]), policy);
  t.same(readExecRecord(dir)?.execs.map((e) => `${e.containerId}/${e.exec.id}`), ['c1/e1']);
  t.same(readdirSync(dir), [EXEC_RECORD_FILE], 'written through a temporary file renamed over it');
});

t.test('bounded: the newest execs, each command cut', async (t) => {
  const dir = t.testdir({});
  const recorder = execRecorder(dir);
  const huge = Array.from({ length: 1000 }, () => 'x'.repeat(10_000));
  for (let i = 0; i < MAX_RECORDED_EXECS + 10; i++) await recorder.apply(tracked([exec(`e${i}`, true, huge)]), policy);
  const record = readExecRecord(dir)!;
  t.equal(record.execs.length, MAX_RECORDED_EXECS);
  t.equal(record.execs[0]!.exec.id, 'e10');
  t.ok(record.execs.every((e) => e.exec.command.length <= 16 && e.exec.command.every((a) => a.length <= 256)));
  t.ok(readFileSync(join(dir, EXEC_RECORD_FILE)).length < 4 * 1024 * 1024);
});

t.test('check adds what dockerd no longer lists, as finished; no record or a broken one is null', async (t) => {
  const dir = t.testdir({});
  t.equal(readExecRecord(dir), null);
  writeFileSync(join(dir, EXEC_RECORD_FILE), '{"since": 1');
  t.equal(readExecRecord(dir), null);
  const record = { since: 's', execs: [{ time: 't', containerId: 'c1', exec: exec('gone') }, { time: 't', containerId: 'c1', exec: exec('listed') }, { time: 't', containerId: 'c2', exec: exec('other') }] };
  const facts = withRecordedExecs(makeFacts({ id: 'c1', execs: [exec('listed')] }), record);
  t.same(facts.execs.map((e) => `${e.id}:${e.running}`), ['listed:true', 'gone:false']);
});
