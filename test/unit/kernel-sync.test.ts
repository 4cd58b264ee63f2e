// KernelSync with a table of plain counters: the queue and drift-read discipline alone (the kernel side
// is proven through the enforcers in test/integration: nft-apply, bridge-enforcer, ports).
import t from 'tap';
import { KernelSync, type SyncedTable } from '../../src/app/kernel-sync.js';

/** A promise and its resolver, to hold a flush or a read open while the test acts. */
function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Lets a queued job start (the queue runs jobs from promise callbacks). */
const started = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function table(overrides: Partial<SyncedTable> = {}) {
  const calls = { flushes: 0, reads: 0, repairs: 0 };
  const synced: SyncedTable = {
    flush: async () => void calls.flushes++,
    readsBesideWrites: () => false,
    readHolds: () => (calls.reads++, Promise.resolve(true)),
    repair: async () => (calls.repairs++, null),
    ...overrides,
  };
  return { calls, synced };
}

t.test('changes recorded while a write runs go out together in the next one', async (t) => {
  const running = gate();
  let flushes = 0;
  const sync = new KernelSync({ ...table().synced, flush: async () => { flushes++; if (flushes === 1) await running.promise; } });
  const first = sync.write();
  t.equal(sync.write(), first, 'a change recorded before the write started joins it');
  await started();
  const rest = [sync.write(), sync.write(), sync.write()];
  t.equal(rest[0], rest[2], 'every change recorded meanwhile joins the one queued write');
  running.open();
  await Promise.all([first, ...rest]);
  t.equal(flushes, 2, 'one write running, one for everything recorded meanwhile');
});

t.test('a failing write fails every change that joined it, once; the next change writes again', async (t) => {
  const running = gate();
  let flushes = 0;
  const sync = new KernelSync({ ...table().synced, flush: async () => { flushes++; if (flushes === 1) await running.promise; throw new Error('refused'); } });
  const first = sync.write();
  await started();
  const joined = [sync.write(), sync.write()];
  running.open();
  const results = await Promise.allSettled([first, ...joined]);
  t.same(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  t.equal(flushes, 2, 'not one retry sequence per waiting change');
  await t.rejects(sync.write(), /refused/);
  t.equal(flushes, 3);
});

t.test('no drift: proven by a read outside the queue, nothing queued', async (t) => {
  const { calls, synced } = table();
  const sync = new KernelSync(synced);
  t.equal(await sync.repairDrift(), null);
  t.same(calls, { flushes: 0, reads: 1, repairs: 0 });
});

t.test('a read that overlapped a write is redone; changes are not held by it', async (t) => {
  const reads: Array<ReturnType<typeof gate>> = [];
  let flushes = 0;
  const sync = new KernelSync({
    flush: async () => void flushes++,
    readsBesideWrites: () => false,
    readHolds: () => { const g = gate(); reads.push(g); return g.promise.then(() => true); },
    repair: async () => 'repaired',
  });
  const check = sync.repairDrift();
  await sync.write(); // goes out while the read is open
  t.equal(flushes, 1, 'the write did not wait for the read');
  reads[0]!.open();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(reads.length, 2, 'the overlapped read is redone');
  reads[1]!.open();
  t.equal(await check, null, 'the second read, with no write during it, counts');
});

t.test('a drift seen outside the queue is confirmed and repaired in it', async (t) => {
  const { synced } = table({ readHolds: () => Promise.resolve(false), repair: async () => 'table missing' });
  const sync = new KernelSync(synced);
  t.equal(await sync.repairDrift(), 'table missing');
});

t.test('when nothing can be proven outside the queue (content unknown, or work queued), the check runs in it', async (t) => {
  let repairs = 0;
  const unknown = new KernelSync({ ...table().synced, readHolds: () => null, repair: async () => (repairs++, null) });
  t.equal(await unknown.repairDrift(), null);
  t.equal(repairs, 1);

  const running = gate();
  let reads = 0;
  const busy = new KernelSync({ flush: () => running.promise, readsBesideWrites: () => false, readHolds: () => (reads++, Promise.resolve(true)), repair: async () => (repairs++, null) });
  const write = busy.write();
  const check = busy.repairDrift();
  running.open();
  await Promise.all([write, check]);
  t.equal(reads, 0, 'no read while a write was queued');
  t.equal(repairs, 2, 'the check ran in the queue, after the write');
});

t.test('a table that reads beside writes: read while an update runs; not while a replace does (the check waits in the queue)', async (t) => {
  let writing = gate();
  let reads = 0;
  let replace = false;
  const sync: KernelSync = new KernelSync({
    flush: async () => {
      if (replace) await sync.replacing(() => writing.promise);
      else await writing.promise;
    },
    readsBesideWrites: () => true,
    readHolds: () => (reads++, Promise.resolve(true)),
    repair: async () => 'in the queue',
  });
  const update = sync.write();
  await started();
  t.equal(await sync.repairDrift(), null, 'an element update running does not stop the read');
  t.equal(reads, 1);
  writing.open();
  await update;

  writing = gate();
  replace = true;
  const replacing = sync.write();
  await started();
  const during = sync.repairDrift();
  await started();
  t.equal(reads, 1, 'no read while the replace runs');
  writing.open();
  await replacing;
  t.equal(await during, 'in the queue', 'checked in the queue, after the replace');
});

t.test('a read that a replace overlapped is redone', async (t) => {
  const reading = gate();
  let reads = 0;
  const sync: KernelSync = new KernelSync({
    flush: () => sync.replacing(async () => {}),
    readsBesideWrites: () => true,
    readHolds: () => (++reads === 1 ? reading.promise.then(() => true) : Promise.resolve(true)),
    repair: async () => 'in the queue',
  });
  const check = sync.repairDrift();
  await sync.write(); // a whole replace while the first read is open
  reading.open();
  t.equal(await check, null);
  t.equal(reads, 2, 'the first read did not count; the second did');
});

t.test('keys announced while a drift read runs are left out by it; with no read running, nothing is computed', async (t) => {
  const reading = gate();
  let seen: Set<string> | null = null;
  const sync = new KernelSync({
    ...table().synced,
    readsBesideWrites: () => true,
    readHolds: (changing) => {
      changing.add('being written');
      seen = changing;
      return reading.promise.then(() => true);
    },
  });
  let computed = 0;
  sync.changing(() => (computed++, ['before']));
  t.equal(computed, 0, 'no read running: the keys are not even listed');
  const check = sync.repairDrift();
  sync.changing(() => ['a', 'b']);
  reading.open();
  t.equal(await check, null);
  t.same([...seen!].sort(), ['a', 'b', 'being written']);
  sync.changing(() => ['after']);
  t.notOk(seen!.has('after'), 'a read that ended takes no more keys');
});
