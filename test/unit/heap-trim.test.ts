/**
 * releaseFreedMemory (src/adapters/heap.ts): V8's garbage collected without --expose-gc, and its addon (native/heap_trim.c)
 * against a real glibc heap: a child node fragments its
 * malloc heap (blocks below the mmap threshold, the last one kept so the top cannot be trimmed),
 * frees them, and reports its RSS before and after the call.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import t from 'tap';

const addon = fileURLToPath(new URL('../../native/build/Release/dw_heap.node', import.meta.url));

const CHILD = `
const { trim } = require(${JSON.stringify(addon)});
const rssMiB = () => Number(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
let blocks = Array.from({ length: 1500 }, () => Buffer.alloc(64 * 1024, 1));
const pin = Buffer.alloc(64 * 1024, 1);
blocks = null;
globalThis.gc(); globalThis.gc();
const before = rssMiB();
const released = trim();
console.log(JSON.stringify({ before, after: rssMiB(), released, pinned: pin.length }));
`;

t.test('freed pages in the middle of the heap go back to the kernel', (t) => {
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD], { encoding: 'utf8', env: { PATH: process.env.PATH, MALLOC_MMAP_THRESHOLD_: '131072' } });
  t.equal(child.status, 0, child.stderr);
  const { before, after, released } = JSON.parse(child.stdout) as { before: number; after: number; released: boolean };
  t.ok(released, 'malloc_trim reports memory released');
  // 1,500 × 64 KiB = 94 MiB freed but resident; nearly all of it goes.
  t.ok(before - after > 60, `RSS ${before.toFixed(1)} → ${after.toFixed(1)} MiB`);
  t.end();
});


t.test("releaseFreedMemory collects V8's garbage too, without --expose-gc", async (t) => {
  const { releaseFreedMemory } = await import('../../src/adapters/heap.js');
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'run without --expose-gc, as the daemon is');
  // Old garbage: made and dropped in an earlier task (a WeakRef holds its target to the end of the task that made it).
  const ref = await new Promise<WeakRef<object>>((resolve) => setImmediate(() => resolve(new WeakRef({ payload: new Array(1000).fill('x') }))));
  t.ok(ref.deref(), 'nothing collected it meanwhile');
  // deref() holds the target to the end of this task too.
  await new Promise((resolve) => setImmediate(resolve));
  releaseFreedMemory(Infinity);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(ref.deref(), undefined, 'collected by the call');
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'and gc() is not left on the global object');
});

t.test('releaseFreedMemory compacts the old space: pages thinly left by garbage are given up', async (t) => {
  const { releaseFreedMemory } = await import('../../src/adapters/heap.js');
  const oldSpace = (): { committed: number; used: number } => {
    const s = getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!;
    return { committed: s.space_size / 2 ** 20, used: s.space_used_size / 2 ** 20 };
  };
  // ~15 MiB promoted to the old space, then all but one object in 20 dropped: every page keeps a few.
  const kept: object[] = [];
  let made: object[] | null = [];
  for (let i = 0; i < 400_000; i++) {
    const o = { i, s: `x${i}` };
    made.push(o);
    if (i % 20 === 0) kept.push(o);
  }
  made = null;
  releaseFreedMemory(Infinity);
  const after = oldSpace();
  // A collection without compaction leaves ~14 MiB committed for ~4 used here.
  t.ok(after.committed - after.used < 3, `old space ${after.committed.toFixed(1)} MiB committed, ${after.used.toFixed(1)} used`);
  t.equal(kept.length, 20_000);
});

t.test('releaseFreedMemory leaves a heap above its bound to V8: no pause that grows with a big heap', async (t) => {
  const { releaseFreedMemory } = await import('../../src/adapters/heap.js');
  const ref = await new Promise<WeakRef<object>>((resolve) => setImmediate(() => resolve(new WeakRef({ payload: new Array(1000).fill('x') }))));
  await new Promise((resolve) => setImmediate(resolve));
  releaseFreedMemory(0); // every heap is above 0 bytes
  await new Promise((resolve) => setImmediate(resolve));
  t.ok(ref.deref(), 'not collected by the call');
});
