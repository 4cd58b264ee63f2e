/**
 * holdOptimisingCompiler (src/adapters/tiering.ts), against V8 itself: whether a hot function is
 * optimised by TurboFan, as V8's own %GetOptimizationStatus says (natives syntax, allowed in this
 * test's process only).
 */
import { setFlagsFromString } from 'node:v8';
import t from 'tap';
import { holdOptimisingCompiler } from '../../src/adapters/tiering.js';

setFlagsFromString('--allow-natives-syntax');
const status = new Function('f', 'return %GetOptimizationStatus(f)') as (f: unknown) => number;
/** V8's OptimizationStatus bit: the function runs optimised code. */
const OPTIMIZED = 1 << 4;

let made = 0;
/** A new function each time: V8 caches the compilation of a source it has seen, optimised code included. */
const hotFunction = (): ((x: number) => number) => new Function('x', `/* ${made++} */ let s = 0; for (let i = 0; i < 50; i++) s += (x * i) % 7; return s;`) as (x: number) => number;

/** Runs `f` hot, a batch per turn (TurboFan compiles on another thread), until optimised or `turns` are over. */
async function optimisedWithin(f: (x: number) => number, turns: number): Promise<boolean> {
  for (let turn = 0; turn < turns; turn++) {
    for (let i = 0; i < 2000; i++) f(i);
    if ((status(f) & OPTIMIZED) !== 0) return true;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return false;
}

t.test('held, a hot function stays unoptimised; released, the same function is optimised', async (t) => {
  const hold = holdOptimisingCompiler([]);
  const f = hotFunction();
  t.notOk(await optimisedWithin(f, 100), `not optimised while held (status ${status(f).toString(2)})`);
  hold.release();
  hold.release(); // a second release changes nothing
  t.ok(await optimisedWithin(f, 300), `optimised after the release (status ${status(f).toString(2)})`);
});

t.test('tiers chosen on node\'s command line are left as they are', async (t) => {
  for (const chosen of ['--no-opt', '--max-opt=2', '--max_opt=2', '--no_turbofan', '--turbofan', '--jitless']) {
    const hold = holdOptimisingCompiler(['--import', 'x.js', chosen]);
    t.ok(await optimisedWithin(hotFunction(), 300), `${chosen}: not held`);
    hold.release();
  }
  // Near misses are not choices.
  const hold = holdOptimisingCompiler(['--optimize-for-size-not-a-flag']);
  t.notOk(await optimisedWithin(hotFunction(), 100), 'an unrelated flag: held');
  hold.release();
});
