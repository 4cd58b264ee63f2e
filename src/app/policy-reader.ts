import { Worker } from 'node:worker_threads';
import type { PolicyError, PolicyResult } from '../domain/policy/result.js';
import { fromTransferable, type TransferablePolicy } from './policy-transfer.js';

/** A reload that takes longer than this (the bounds make it a few seconds at most) is given up: the last good policy stays. */
export const POLICY_READ_TIME_LIMIT_MS = 60_000;
/** The worker's heap; the bounds keep a policy far below it. */
const POLICY_READ_HEAP_MB = 512;

/**
 * Reads and validates the policy in a worker thread, so a big or hostile file costs that thread, not the
 * event loop that judges containers: enforcement goes on while a reload is read. The start-up read too:
 * the validator (zod with the policy's schema) then never loads on the daemon's own heap, where it
 * would stay for the daemon's life (README "Scale", idle RSS). Never rejects: a worker that fails,
 * runs out of memory or out of time is an error of the policy file like any other.
 */
export function readPolicyOffLoop(file: string, timeLimitMs = POLICY_READ_TIME_LIMIT_MS): Promise<PolicyResult> {
  // Under the test runner this module is TypeScript, and so is its worker.
  const url = new URL(import.meta.url.endsWith('.ts') ? './policy-worker.ts' : './policy-worker.js', import.meta.url);
  return new Promise((resolve) => {
    const failed = (message: string): void => resolve({ ok: false, errors: [{ file, line: 0, column: 0, path: '', message } satisfies PolicyError] });
    const worker = new Worker(url, { workerData: { file }, resourceLimits: { maxOldGenerationSizeMb: POLICY_READ_HEAP_MB }, stdout: true, stderr: true });
    // A daemon stopping does not wait for a reload: the thread ends with the process.
    worker.unref();
    const timer = setTimeout(() => {
      void worker.terminate();
      failed(`reading the policy took longer than ${timeLimitMs / 1000} s; given up`);
    }, timeLimitMs).unref();
    worker.once('message', (message: PolicyResult | { ok: true; policy: TransferablePolicy }) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(message.ok ? { ok: true, policy: fromTransferable(message.policy as TransferablePolicy) } : message);
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      const code = (error as NodeJS.ErrnoException).code;
      failed(code === 'ERR_WORKER_OUT_OF_MEMORY' ? `reading the policy needed more than ${POLICY_READ_HEAP_MB} MB; given up` : `reading the policy failed: ${error.message.split('\n')[0]}`);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      failed(`reading the policy ended without a result (exit ${code})`);
    });
  });
}
