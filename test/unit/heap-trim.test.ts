/**
 * releaseFreedMemory (src/adapters/heap.ts): V8's garbage collected without --expose-gc, and its addon (native/heap_trim.c)
 * against a real glibc heap: a child node fragments its
 * malloc heap (blocks below the mmap threshold, the last one kept so the top cannot be trimmed),
 * frees them, and reports its RSS before and after the call.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
  releaseFreedMemory();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(ref.deref(), undefined, 'collected by the call');
  t.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'and gc() is not left on the global object');
});
