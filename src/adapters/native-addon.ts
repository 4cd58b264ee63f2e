import { createRequire } from 'node:module';

/**
 * Loads one of our addons, built by `npm run build` (node-gyp in native/). The path is relative to this
 * module, two levels below the checkout: src/adapters/ (tests), dist/adapters/ (tsc) and dist/cli/ (the
 * bundle, scripts/bundle.mjs, which holds this module) all sit at that depth.
 */
export function loadAddon<T>(name: 'dw_selinux' | 'dw_netns' | 'dw_nftevents' | 'dw_heap' | 'dw_procfs'): T {
  return createRequire(import.meta.url)(`../../native/build/Release/${name}.node`) as T;
}
