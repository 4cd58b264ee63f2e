import t from 'tap';
import { PolicyReloader } from '../../src/app/policy-reloader.js';
import { ReconcileLoop } from '../../src/app/reconcile-loop.js';
import { ProgressWatchdog } from '../../src/app/watchdog.js';
import type { PolicyResult } from '../../src/domain/policy/result.js';
import type { Policy } from '../../src/domain/policy/model.js';

/** A promise settled by the test. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

/** Lets every settled promise's callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Timers the test fires by hand: `advance(ms)` runs what falls due, in order. */
function fakeScheduler() {
  let now = 0;
  let timers: Array<{ at: number; run: () => void }> = [];
  return {
    schedule: (run: () => void, ms: number) => {
      const timer = { at: now + ms, run };
      timers.push(timer);
      return () => void (timers = timers.filter((x) => x !== timer));
    },
    advance(ms: number) {
      now += ms;
      const due = timers.filter((x) => x.at <= now).sort((a, b) => a.at - b.at);
      timers = timers.filter((x) => x.at > now);
      for (const timer of due) timer.run();
    },
    get pending() {
      return timers.length;
    },
  };
}

t.test('watchdog: pings while tasks finish or the queue is empty; withheld once queued work is stuck', async (t) => {
  let now = 0;
  const watchdog = new ProgressWatchdog(60_000, () => now);
  t.ok(watchdog.alive(0, true), 'idle');
  now = 100_000;
  t.ok(watchdog.alive(0, true), 'idle for long is not stuck');
  t.ok(watchdog.alive(0, false), 'work queued now');
  now += 59_999;
  t.ok(watchdog.alive(0, false), 'no progress, but not yet for 60 s');
  now += 1;
  t.notOk(watchdog.alive(0, false), 'no task finished for 60 s with work queued: ping withheld');
  now += 30_000;
  t.notOk(watchdog.alive(0, false), 'still withheld');
  t.ok(watchdog.alive(1, false), 'a task finished: progress, pings again');
  now += 59_999;
  t.ok(watchdog.alive(5, false));
});

t.test('reconcile loop: one at a time; requests during one coalesce into one more run', async (t) => {
  const runs: Array<{ reason: string; gate: ReturnType<typeof deferred<void>> }> = [];
  const settled: string[] = [];
  const loop = new ReconcileLoop(
    (reason) => {
      const gate = deferred();
      runs.push({ reason, gate });
      return gate.promise;
    },
    { done: (reason) => settled.push(`done ${reason}`), failed: (reason) => settled.push(`failed ${reason}`), settled: () => settled.push('settled') },
  );
  const first = loop.request('start-up');
  t.ok(loop.busy);
  t.equal(loop.request('reload'), first, 'a request during a run joins it');
  void loop.request('reconnect');
  t.equal(runs.length, 1, 'not run twice at once');
  runs[0]!.gate.resolve();
  await first;
  await settle();
  t.same(runs.map((r) => r.reason), ['start-up', 'requested again'], 'the two requests made one more run');
  runs[1]!.gate.reject(new Error('engine gone'));
  await settle();
  await settle();
  t.same(settled, ['done start-up', 'settled', 'failed requested again', 'settled']);
  t.notOk(loop.busy);
  t.equal(runs.length, 2, 'nothing more was asked');
});

t.test('reconcile loop: a queue overflow is reconciled at the next tick, once, or after the running one', async (t) => {
  const runs: Array<{ reason: string; gate: ReturnType<typeof deferred<void>> }> = [];
  const loop = new ReconcileLoop((reason) => {
    const gate = deferred();
    runs.push({ reason, gate });
    return gate.promise;
  }, { done: () => {}, failed: () => {}, settled: () => {} });
  loop.tick();
  t.equal(runs.length, 0, 'nothing wanted, nothing run');
  loop.requestSoon();
  loop.requestSoon();
  t.ok(loop.wanted);
  loop.tick();
  t.same(runs.map((r) => r.reason), ['queue overflow']);
  t.notOk(loop.wanted, 'started: no longer wanted');
  loop.requestSoon(); // overflow again while it runs
  loop.tick();
  t.equal(runs.length, 1, 'a tick never starts a second one beside it');
  runs[0]!.gate.resolve();
  await settle();
  await settle();
  t.same(runs.map((r) => r.reason), ['queue overflow', 'requested again'], 'run once more after it');
  loop.stop();
  runs[1]!.gate.resolve();
  await settle();
  loop.requestSoon();
  loop.tick();
  t.equal(runs.length, 2, 'stopped: nothing new');
});

const policyResult = (hash: string): PolicyResult => ({ ok: true, policy: { hash } as Policy });
const invalid = (message: string): PolicyResult => ({ ok: false, errors: [{ file: 'policy.yaml', line: 1, column: 1, path: 'x', message }] as never });

t.test('reloader: file events are debounced into one read; a SIGHUP during a read reads once more after it', async (t) => {
  const timers = fakeScheduler();
  const reads: Array<ReturnType<typeof deferred<PolicyResult>>> = [];
  const accepted: string[] = [];
  let hash = 'a';
  const reloader = new PolicyReloader({
    read: () => {
      const read = deferred<PolicyResult>();
      reads.push(read);
      return read.promise;
    },
    accepted: async (r) => void accepted.push((hash = r.policy.hash)),
    rejected: () => {},
    currentHash: () => hash,
    fileVersion: () => 'v1',
    debounceMs: 200,
    schedule: timers.schedule,
  });
  reloader.fileChanged();
  timers.advance(150);
  reloader.fileChanged(); // the editor's second write
  timers.advance(150);
  t.equal(reads.length, 0, 'still inside the debounce window of the last event');
  timers.advance(50);
  t.equal(reads.length, 1, 'one read for the edit');
  void reloader.reload(); // SIGHUP while reading
  void reloader.reload();
  reads[0]!.resolve(policyResult('b'));
  await settle();
  await settle();
  t.equal(reads.length, 2, 'read once more after, not twice');
  reads[1]!.resolve(policyResult('b'));
  await settle();
  await settle();
  t.same(accepted, ['b'], 'the same policy again is not a reload');
  reloader.stop();
  reloader.fileChanged();
  t.equal(timers.pending, 0, 'stopped: no more reads');
});

t.test('reloader: a rejected edit is fresh once per file version and errors', async (t) => {
  const results: PolicyResult[] = [invalid('bad'), invalid('bad'), invalid('worse'), policyResult('b'), invalid('bad')];
  const fresh: boolean[] = [];
  let version = 'v1';
  const reloader = new PolicyReloader({
    read: async () => results.shift()!,
    accepted: async () => {},
    rejected: (_r, isFresh) => void fresh.push(isFresh),
    currentHash: () => 'a',
    fileVersion: () => version,
    debounceMs: 200,
    schedule: fakeScheduler().schedule,
  });
  await reloader.reload(); // bad, v1
  await reloader.reload(); // the same edit seen again (file event + SIGHUP)
  version = 'v2';
  await reloader.reload(); // worse, another edit
  await reloader.reload(); // fixed
  await reloader.reload(); // bad again after a good one: news
  t.same(fresh, [true, false, true, true]);
});

t.test('reloader: a read the file changed during is read again, at most 5 times in a row, then judged', async (t) => {
  let version = 0;
  let reads = 0;
  const rejected: number[] = [];
  const reloader = new PolicyReloader({
    // A file rewritten during every read (a program writing it without pause).
    read: async () => {
      reads += 1;
      version += 1;
      return invalid(`read ${reads}`);
    },
    accepted: async () => {},
    rejected: () => void rejected.push(reads),
    currentHash: () => 'a',
    fileVersion: () => `v${version}`,
    debounceMs: 200,
    schedule: fakeScheduler().schedule,
  });
  void reloader.reload();
  for (let i = 0; i < 50 && rejected.length === 0; i++) await settle();
  t.same(rejected, [6], 'five reads again, the sixth judged as read');
  await reloader.reload(); // the count starts again after a judged read
  for (let i = 0; i < 50 && rejected.length === 1; i++) await settle();
  t.same(rejected, [6, 12]);
});
