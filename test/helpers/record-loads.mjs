// Preloaded with `node --import` into a daemon under test: appends the URL of every module node's loader
// loads on the main thread (not in worker threads) to the file DW_TEST_LOADS_FILE, one a line: what the
// daemon holds on its own heap for its life.
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const file = process.env.DW_TEST_LOADS_FILE;
if (!file) throw new Error('record-loads.mjs: set DW_TEST_LOADS_FILE');
// The hooks run on node's loader thread.
const hooks = `
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(${JSON.stringify(file)}, url + '\\n');
  return next(url, context);
}
`;
if (isMainThread) register(`data:text/javascript,${encodeURIComponent(hooks)}`);
