import t from 'tap';
import { freshRead } from '../../src/adapters/fresh-read.js';

/** A read whose end the test decides; counts the reads started. */
function manualReads() {
  const ends: Array<(value: number) => void> = [];
  let started = 0;
  const read = freshRead(() => {
    const n = ++started;
    return new Promise<number>((resolve) => ends.push(() => resolve(n)));
  });
  return { read, started: () => started, end: (i: number) => ends[i]!(0) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

t.test('callers that ask while a read runs share the next one, started when it ends', async (t) => {
  const { read, started, end } = manualReads();
  const first = read();
  t.equal(started(), 1);
  const waiting = [read(), read(), read()];
  await settle();
  t.equal(started(), 1, 'no second read while the first runs');
  end(0);
  t.equal(await first, 1);
  await settle();
  t.equal(started(), 2, 'one read for all three');
  end(1);
  t.same(await Promise.all(waiting), [2, 2, 2], 'each got a read that started after its call');
});

t.test('no caller gets a read that started before its call', async (t) => {
  const { read, started, end } = manualReads();
  const first = read();
  const second = read(); // waits for the next read
  end(0);
  await first;
  await settle();
  const third = read(); // the second read runs now: this one needs a third
  end(1);
  t.equal(await second, 2);
  await settle();
  t.equal(started(), 3);
  end(2);
  t.equal(await third, 3);
});

t.test('a failed read fails its callers only; the next call reads again', async (t) => {
  let n = 0;
  const read = freshRead(async () => {
    n++;
    if (n === 1) throw new Error('boom');
    return n;
  });
  await t.rejects(read(), /boom/);
  t.equal(await read(), 2);
});

/** Reads that end when the test says, on clocks the test sets; each resolves with its number. */
function clockedReads(reuseWithinMs: number) {
  const clock = { wall: 1_000, mono: 0 };
  const ends: Array<() => void> = [];
  let started = 0;
  const read = freshRead(
    () => {
      const n = ++started;
      return new Promise<number>((resolve) => ends.push(() => resolve(n)));
    },
    { reuseWithinMs, wall: () => clock.wall, monotonic: () => clock.mono },
  );
  return { read, clock, started: () => started, end: (i: number) => ends[i]!() };
}

t.test('a caller that needs a read begun after an earlier moment takes the last one, within its age', async (t) => {
  const { read, clock, started, end } = clockedReads(2_000);
  const first = read(); // begins at wall 1000
  end(0);
  t.equal(await first, 1);
  await settle();
  clock.wall = 1_500;
  clock.mono = 1_999;
  t.equal(await read(999), 1, 'begun after 999 and 1,999 ms old: no new read');
  t.equal(started(), 1);
  const later = read(1_000); // the read began at 1000, not after it
  t.equal(started(), 2, 'a moment not before the read began: a read of its own');
  end(1);
  t.equal(await later, 2);
  await settle();
  clock.mono = 1_999 + 2_001;
  const old = read(0);
  t.equal(started(), 3, 'older than reuseWithinMs: read again, whatever the moment');
  end(2);
  t.equal(await old, 3);
  t.equal(started(), 3);
});

t.test('a read running since after the moment serves the caller; a plain call still waits for the next', async (t) => {
  const { read, clock, started, end } = clockedReads(2_000);
  clock.wall = 5_000;
  const first = read();
  const shared = read(4_999);
  const fresh = read();
  t.equal(started(), 1);
  end(0);
  t.equal(await first, 1);
  t.equal(await shared, 1, 'the running read began after 4,999');
  await settle();
  t.equal(started(), 2, 'the plain call got a read begun after it');
  end(1);
  t.equal(await fresh, 2);
});

t.test('without reuseWithinMs a finished read is never reused, and a failed one never is', async (t) => {
  const { read, started, end } = clockedReads(0);
  const first = read();
  end(0);
  await first;
  await settle();
  const again = read(0);
  t.equal(started(), 2, 'reuse is off by default');
  end(1);
  t.equal(await again, 2);
  let n = 0;
  const failing = freshRead(async () => {
    if (++n === 1) throw new Error('boom');
    return n;
  }, { reuseWithinMs: 60_000 });
  await t.rejects(failing(), /boom/);
  t.equal(await failing(0), 2, 'the failed read is not kept');
});
