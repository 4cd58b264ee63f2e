/**
 * Freed malloc memory handed back to the kernel (native/heap_trim.c). glibc keeps the pages a busy
 * moment freed (a reconcile, a policy reload in the worker), so an idle daemon would stay at its
 * high-water mark; after each reconcile the daemon gives them back. V8's heap is not touched.
 */
import { loadAddon } from './native-addon.js';

interface Addon {
  trim(): boolean;
}

let loaded: Addon | undefined;

/** malloc_trim(0): true when some memory was released. */
export function releaseFreedMemory(): boolean {
  return (loaded ??= loadAddon<Addon>('dw_heap')).trim();
}
