// Preloaded with `node --import` into a daemon under test: sends this process a real signal (kill(2))
// the moment node's module loader loads a given module, so the signal lands while the program is
// still loading, at the same point on a fast or a loaded machine. DW_TEST_SIGNAL: the signal;
// DW_TEST_SIGNAL_ON: how the module's URL ends (default: `dockwarden run`'s module, which the CLI
// imports on demand: a file of its own in tsc's dist/ and in the bundle, scripts/bundle.mjs).
import { register } from 'node:module';

const signal = process.env.DW_TEST_SIGNAL;
const suffix = process.env.DW_TEST_SIGNAL_ON ?? '/dist/cli/run.js';
if (!signal) throw new Error('signal-on-load.mjs: set DW_TEST_SIGNAL');
// The hooks run on node's loader thread; they signal the process once.
const hooks = `
let sent = false;
export async function load(url, context, next) {
  if (!sent && url.endsWith(${JSON.stringify(suffix)})) {
    sent = true;
    process.kill(${process.pid}, ${JSON.stringify(signal)});
  }
  return next(url, context);
}
`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`);
