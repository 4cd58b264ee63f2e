import t from 'tap';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeAlert, type Alert } from '../../src/domain/alerts/alert.js';
import { DiskQueue } from '../../src/app/alerts/disk-queue.js';

let n = 0;
const alert = (): Alert =>
  makeAlert({ check: 'daemon.docker-back', severity: 'low', message: `m${n++}` }, { host: 'h', mode: 'enforce', policyHash: 'p' }, new Date(), new Uint8Array(10).map(() => Math.floor(Math.random() * 256)));

t.test('records are files before push returns, and come back in order after a reopen', async (t) => {
  const dir = join(t.testdir(), 'sink');
  const q = new DiskQueue(dir, 100);
  const pushed = [alert(), alert(), alert()];
  for (const a of pushed) t.equal(q.push(a), 0);
  t.equal(readdirSync(dir).length, 3, 'one file per record, no temporaries left');
  q.remove(pushed[1]!.id);
  const again = new DiskQueue(dir, 100);
  t.equal(again.size, 2);
  t.equal(again.oldest()?.id, pushed[0]!.id);
  again.remove(pushed[0]!.id);
  t.same(again.oldest(), pushed[2], 'the record survives byte for byte');
  const later = alert();
  again.push(later);
  const third = new DiskQueue(dir, 100);
  t.same([third.oldest()?.id, third.size], [pushed[2]!.id, 2], 'new records sort after those of the earlier run');
  third.remove('no-such-id');
  t.equal(third.size, 2, 'removing an unknown id changes nothing');
});

t.test('bounded: a push beyond the limit drops the oldest and says how many', async (t) => {
  const dir = t.testdir();
  const q = new DiskQueue(dir, 3);
  const pushed = [alert(), alert(), alert()];
  for (const a of pushed) q.push(a);
  t.equal(q.overflowOnPush, 1);
  t.equal(q.push(alert()), 1);
  t.equal(q.size, 3);
  t.equal(q.oldest()?.id, pushed[1]!.id);
  t.equal(readdirSync(dir).length, 3, 'the dropped record is gone from disk too');
  t.equal(new DiskQueue(dir, 1).push(alert()), 3, 'a lower limit after a restart drops down to it');
});

t.test('a torn temporary file is discarded, an unreadable record is deleted and counted', async (t) => {
  const dir = t.testdir({ '0000000000000007.json.tmp': '{"id":', '0000000000000008.json': 'not json', 'README': 'ignored' });
  const q = new DiskQueue(dir, 10);
  t.equal(q.size, 0);
  t.equal(q.takeUnreadable(), 1);
  t.equal(q.takeUnreadable(), 0, 'counted once');
  t.same(readdirSync(dir).sort(), ['README']);
  q.push(alert());
  t.same(readdirSync(dir).sort(), ['0000000000000009.json', 'README'], 'numbering continues past what was there');
});

t.test('memory holds ids, not records: the oldest is read back from disk, and a record lost on disk is skipped and counted', async (t) => {
  const dir = t.testdir();
  const q = new DiskQueue(dir, 10);
  const pushed = [alert(), alert(), alert()];
  for (const a of pushed) q.push(a);
  const files = readdirSync(dir).sort();
  // What is delivered is what is on disk: an edit there shows (records are not kept in memory).
  writeFileSync(join(dir, files[0]!), JSON.stringify({ ...pushed[0], message: 'as on disk' }));
  t.equal(q.oldest()?.message, 'as on disk');
  rmSync(join(dir, files[0]!));
  writeFileSync(join(dir, files[1]!), 'torn');
  t.equal(q.oldest()?.id, pushed[2]!.id, 'the missing and the unreadable record are skipped');
  t.equal(q.size, 1);
  t.equal(q.takeUnreadable(), 2);
  t.same(readdirSync(dir), [files[2]], 'the unreadable record is deleted');
});
