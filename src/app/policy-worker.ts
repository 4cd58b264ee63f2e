import { parentPort } from 'node:worker_threads';
import { loadPolicyFile } from '../domain/policy/load.js';
import { toTransferable } from './policy-transfer.js';

/**
 * Runs in a worker thread (policy-reader.ts): once its imports (the validator) are loaded, waits for the
 * policy file's name, reads and validates it, posts the result.
 */
parentPort!.once('message', (file: string) => {
  const result = loadPolicyFile(file);
  parentPort!.postMessage(result.ok ? { ok: true, policy: toTransferable(result.policy) } : result);
});
