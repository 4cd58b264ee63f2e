import t from 'tap';
import { KeyedQueue } from '../../src/app/keyed-queue.js';

const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

function queue(overrides: Partial<ConstructorParameters<typeof KeyedQueue>[0]> = {}) {
  const errors: string[] = [];
  let overflows = 0;
  const q = new KeyedQueue({
    concurrency: 4,
    capacity: 100,
    onError: (key, kind, error) => errors.push(`${key}/${kind}: ${(error as Error).message}`),
    onOverflow: () => overflows++,
    ...overrides,
  });
  return { q, errors, overflows: () => overflows };
}

t.test('tasks of one key run one at a time, in order', async (t) => {
  const { q } = queue();
  const log: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const task = (name: string) => async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    log.push(`start ${name}`);
    await tick();
    log.push(`end ${name}`);
    running--;
  };
  await Promise.all([q.push('a', 'one', task('1')), q.push('a', 'two', task('2')), q.push('a', 'three', task('3'))]);
  t.same(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  t.equal(maxRunning, 1);
});

t.test('different keys run in parallel up to the concurrency limit', async (t) => {
  const { q } = queue({ concurrency: 2 });
  let running = 0;
  let maxRunning = 0;
  const task = async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await tick(10);
    running--;
  };
  await Promise.all(['a', 'b', 'c', 'd', 'e'].map((key) => q.push(key, 'sync', task)));
  t.equal(maxRunning, 2);
  t.equal(q.counters.completed, 5);
  t.equal(q.depth, 0);
});

t.test('a waiting task of the same kind absorbs a new one; a running one does not', async (t) => {
  const { q } = queue();
  let runs = 0;
  const task = async () => {
    runs++;
    await tick();
  };
  const first = q.push('a', 'sync', task); // starts at once
  const second = q.push('a', 'sync', task); // waits
  const third = q.push('a', 'sync', task); // absorbed by the second
  await Promise.all([first, second, third]);
  t.equal(runs, 2);
  t.equal(q.counters.coalesced, 1);
});

t.test('a failing task is reported and does not stop its key', async (t) => {
  const { q, errors } = queue();
  const order: string[] = [];
  await Promise.all([
    q.push('a', 'bad', async () => {
      throw new Error('boom');
    }),
    q.push('a', 'good', async () => {
      order.push('good ran');
    }),
  ]);
  t.same(errors, ['a/bad: boom']);
  t.same(order, ['good ran']);
  t.equal(q.counters.failed, 1);
});

t.test('over capacity: dropped, counted, overflow signalled, push still resolves', async (t) => {
  const { q, overflows } = queue({ concurrency: 1, capacity: 2 });
  let release!: () => void;
  const blocker = new Promise<void>((resolve) => (release = resolve));
  const running = q.push('x', 'block', () => blocker);
  const waiting = [q.push('a', 'sync', async () => {}), q.push('b', 'sync', async () => {})];
  await q.push('c', 'sync', async () => {
    t.fail('a dropped task must not run');
  });
  t.equal(q.counters.dropped, 1);
  t.equal(overflows(), 1);
  release();
  await Promise.all([running, ...waiting]);
  await q.idle();
  t.equal(q.counters.completed, 3);
});

t.test('idle resolves only when nothing waits or runs', async (t) => {
  const { q } = queue();
  let finished = false;
  void q.push('a', 'slow', async () => {
    await tick(20);
    finished = true;
  });
  await q.idle();
  t.ok(finished);
});

t.test('rejects nonsensical limits', async (t) => {
  t.throws(() => queue({ concurrency: 0 }), RangeError);
  t.throws(() => queue({ capacity: 0 }), RangeError);
});
