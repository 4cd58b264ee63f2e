/**
 * Freed memory handed back to the kernel after a busy moment (a reconcile, a policy reload in the worker),
 * so that an idle daemon does not stay at its high-water mark (README "Scale", idle RSS): first a full
 * collection of V8's heap — with 1 MiB semi-spaces (the unit's NODE_OPTIONS) a reconcile's garbage is
 * soon promoted, and an idle daemon runs no major collection that would free it, so its old-space
 * pages stayed resident — then malloc_trim(0) (native/heap_trim.c) for glibc's arenas, which the
 * collection's own frees add to.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadAddon } from './native-addon.js';

interface Addon {
  trim(): boolean;
}

let loaded: Addon | undefined;
let collect: (() => void) | undefined;

/**
 * Above this much of V8's heap in use, the collection is left to V8: it runs on the event loop, and its
 * pause grows with what it copies (30–140 ms for an idle daemon's ~12 MiB, 0.6 s for 88 MiB), while the
 * idle-memory target it serves is a small host's (README "Scale", idle RSS).
 */
export const COLLECT_BELOW_BYTES = 32 * 2 ** 20;

/**
 * A full, synchronous, compacting collection of V8's heap while its use is below `collectBelow` bytes,
 * then malloc_trim(0): true when malloc released some memory. Compacting: a plain full collection frees
 * the garbage but moves objects off a page only when V8 judges it fragmented enough, so the old space
 * stayed committed at its high-water mark (an idle daemon: 12 MiB committed for 7 live) whenever the
 * start-up's garbage was spread thinly.
 */
export function releaseFreedMemory(collectBelow = COLLECT_BELOW_BYTES): boolean {
  if (getHeapStatistics().used_heap_size < collectBelow) {
    collect ??= gcFunction();
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  }
  return (loaded ??= loadAddon<Addon>('dw_heap')).trim();
}

/**
 * V8's gc() without `--expose-gc` on the command line (a daemon started by hand has not the unit's
 * NODE_OPTIONS): with the flag set, V8 gives gc() to the contexts created from then on, so a scratch
 * context's is taken and the flag put back; the function collects the whole isolate's heap.
 */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  try {
    return runInNewContext('gc') as () => void;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
