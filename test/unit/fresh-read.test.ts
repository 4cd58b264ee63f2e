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
