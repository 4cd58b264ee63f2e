import { parentPort, workerData } from 'node:worker_threads';
import { loadPolicyFile } from '../domain/policy/load.js';
import { toTransferable } from './policy-transfer.js';

/** Runs in a worker thread (policy-reader.ts): reads and validates the policy, posts the result. */
const { file } = workerData as { file: string };
const result = loadPolicyFile(file);
parentPort!.postMessage(result.ok ? { ok: true, policy: toTransferable(result.policy) } : result);
