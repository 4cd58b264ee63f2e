import { spawn } from 'node:child_process';

/**
 * File-system lookups on paths containers name (mount sources, volume devices), done where a hung
 * mount cannot reach the daemon. Node's fs calls run on libuv's pool of 4 threads: four `realpath`s
 * stuck on a paused NFS server would stall every other fs call of the process (procfs reads, the
 * state dir), hence every container. Each lookup here is a short-lived child process (`realpath`,
 * `stat`) with a deadline: past it the child is killed (NFS and FUSE waits are killable) and the
 * caller gets `timeout` at once, whether or not the child is gone yet. At most `maxInFlight` children
 * exist at a time; a child that will not die keeps its slot, so a wedged mount costs a bounded
 * number of processes, and lookups that find no slot in time are `timeout` too.
 */
export type ProbeResult = { readonly ok: true; readonly value: string } | { readonly ok: false; readonly reason: 'timeout' | 'error' };

export interface PathProbe {
  /** The path with its symlinks resolved (`realpath -e`). */
  realpath(path: string): Promise<ProbeResult>;
  /** `dev:ino` of the path itself (lstat; decimal, as stat(2) gives them). */
  identity(path: string): Promise<ProbeResult>;
}

export interface PathProbeOptions {
  readonly timeoutMs?: number;
  readonly maxInFlight?: number;
}

/** Longer than any healthy lookup (a few ms), short enough that a container's judgement is not held up long. */
export const PROBE_TIMEOUT_MS = 2_000;
const MAX_IN_FLIGHT = 8;
/** A path's answer: one path (PATH_MAX) or two numbers. */
const MAX_OUTPUT = 8_192;

export function pathProbe(options: PathProbeOptions = {}): PathProbe {
  const { timeoutMs = PROBE_TIMEOUT_MS, maxInFlight = MAX_IN_FLIGHT } = options;
  let inFlight = 0;
  const waiting: Array<() => void> = [];

  function release(): void {
    inFlight--;
    waiting.shift()?.();
  }

  /** Runs `command args… -- path`; resolves by the deadline whatever the child does. */
  function run(command: string, args: readonly string[], path: string, parse: (stdout: string) => string | null): Promise<ProbeResult> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: ProbeResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        resolve(result);
      };
      let child: ReturnType<typeof spawn> | null = null;
      const deadline = setTimeout(() => {
        child?.kill('SIGKILL');
        const queued = waiting.indexOf(begin);
        if (queued !== -1) waiting.splice(queued, 1);
        settle({ ok: false, reason: 'timeout' });
      }, timeoutMs);
      function begin(): void {
        inFlight++;
        let stdout = '';
        child = spawn(command, [...args, '--', path], { stdio: ['ignore', 'pipe', 'ignore'], env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
        child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
          if (stdout.length < MAX_OUTPUT) stdout += chunk;
        });
        child.once('error', () => settle({ ok: false, reason: 'error' }));
        // The slot is freed when the child is really gone, not when its caller gave up on it.
        child.once('close', (code) => {
          release();
          const value = code === 0 ? parse(stdout) : null;
          settle(value === null ? { ok: false, reason: 'error' } : { ok: true, value });
        });
      }
      if (inFlight < maxInFlight) begin();
      else waiting.push(begin);
    });
  }

  return {
    realpath: (path) => run('realpath', ['-e', '-z'], path, (out) => (out.endsWith('\0') && out.startsWith('/') ? out.slice(0, -1) : null)),
    identity: (path) => run('stat', ['-c', '%d:%i'], path, (out) => /^(\d+:\d+)\n$/.exec(out)?.[1] ?? null),
  };
}
