import { existsSync, statSync } from 'node:fs';
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
  return startPolicyReader(timeLimitMs)(file);
}

/**
 * Starts the worker now and returns the one read it will do, given its file: a worker's own start and
 * the validator's load take a few hundred ms on a loaded host, which the daemon's start spends loading
 * its config meanwhile (src/cli/main.ts; issue #15, recovery after SIGKILL). The time limit runs from the read.
 */
export function startPolicyReader(timeLimitMs = POLICY_READ_TIME_LIMIT_MS): (file: string) => Promise<PolicyResult> {
  const worker = new Worker(workerModule(), { resourceLimits: { maxOldGenerationSizeMb: POLICY_READ_HEAP_MB }, stdout: true, stderr: true });
  // The worker's answer, or why there is none; whichever comes first (the listeners are there from the
  // start, as a worker can fail before it is given its file).
  let settle!: (outcome: WorkerAnswer | string) => void;
  const outcome = new Promise<WorkerAnswer | string>((resolve) => (settle = resolve));
  worker.once('message', (message: WorkerAnswer) => {
    void worker.terminate();
    settle(message);
  });
  worker.once('error', (error) => {
    const code = (error as NodeJS.ErrnoException).code;
    settle(code === 'ERR_WORKER_OUT_OF_MEMORY' ? `reading the policy needed more than ${POLICY_READ_HEAP_MB} MB; given up` : `reading the policy failed: ${error.message.split('\n')[0]}`);
  });
  worker.once('exit', (code) => settle(`reading the policy ended without a result (exit ${code})`));
  // Until it is given a file, the worker does not keep the process: `dockwarden run` with a bad config
  // exits. After the listeners, as a 'message' listener refs the worker again; a read refs it.
  worker.unref();
  return async (file) => {
    worker.ref();
    worker.postMessage(file);
    const timer = setTimeout(() => {
      void worker.terminate();
      settle(`reading the policy took longer than ${timeLimitMs / 1000} s; given up`);
    }, timeLimitMs).unref();
    const answer = await outcome;
    clearTimeout(timer);
    if (typeof answer === 'string') return { ok: false, errors: [{ file, line: 0, column: 0, path: '', message: answer } satisfies PolicyError] };
    return answer.ok ? { ok: true, policy: fromTransferable(answer.policy) } : answer;
  };
}

/**
 * What tells one version of the policy file from another (`PolicyReloader`): its inode (an editor's or
 * config management's replacement), size and modification time (a write in place; the size too, as
 * the kernel's clock moves in ticks of a few ms, and a truncate and its write can fall in one).
 */
export function policyFileVersion(file: string): string {
  try {
    const { ino, size, mtimeMs } = statSync(file);
    return `${ino}:${size}:${mtimeMs}`;
  } catch {
    return 'unreadable';
  }
}

/**
 * The worker's module, beside this one: bundled (scripts/bundle.mjs), one CommonJS file, quicker to start
 * a worker from; tsc's ES module in a tsc-only build; TypeScript under the test runner.
 */
function workerModule(): URL {
  if (import.meta.url.endsWith('.ts')) return new URL('./policy-worker.ts', import.meta.url);
  const bundled = new URL('./policy-worker.cjs', import.meta.url);
  return existsSync(bundled) ? bundled : new URL('./policy-worker.js', import.meta.url);
}

type WorkerAnswer = Exclude<PolicyResult, { ok: true }> | { ok: true; policy: TransferablePolicy };
