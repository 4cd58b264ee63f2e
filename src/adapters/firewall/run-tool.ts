import { execFile } from 'node:child_process';
import { setPriority } from 'node:os';
import { basename } from 'node:path';

export const TOOL_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 256 << 20;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** How much of an input line an error message quotes. */
const SHOWN_LINE = 200;
/**
 * The niceness of a `background` run: beside one busy process at ours it gets about a tenth of a CPU
 * (CFS weights 110 : 1024), so events' runs go first, and even on a saturated host a read that takes
 * ~1 s of CPU (10,000 containers) ends well within TOOL_TIMEOUT_MS (at 19 it would get ~1.5%).
 */
const BACKGROUND_NICENESS = 10;

/**
 * A tool (`nft`, `iptables-restore`, `semanage`, `ip`, …) that could not be started, exited non-zero
 * or was killed at its deadline. Every tool failure is one of these, so a caller tells them apart by
 * field, not by parsing messages; NftError and IptablesError add where in their input the tool failed.
 */
export class ToolError extends Error {
  override readonly name: string = 'ToolError';
  constructor(
    message: string,
    /** The program's file name (`nft`, `iptables-nft-restore`). */
    readonly tool: string,
    /** Its exit code; null when it could not be started or was killed. */
    readonly exitCode: number | null,
    /** Killed at its deadline. */
    readonly timedOut: boolean,
    readonly stderr: string,
    /** The 1-based input line the tool named as failing, and its text; null when it named none. */
    readonly line: number | null = null,
    readonly inputLine: string | null = null,
  ) {
    super(message);
  }
}

export const isToolError = (error: unknown): error is ToolError => error instanceof ToolError;

/** Input line `line` (1-based) as an error message quotes it: trimmed, at most SHOWN_LINE characters. */
export function quotedLine(input: string, line: number): { readonly text: string; readonly shown: string } {
  const text = input.split('\n')[line - 1] ?? '';
  return { text, shown: (text.length > SHOWN_LINE ? `${text.slice(0, SHOWN_LINE)}…` : text).trim() };
}

/**
 * The one way dockwarden runs a tool (`nft`, `iptables-restore`, `semanage`, `ip`): by argument
 * array, never a shell, with `input` on stdin, killed after `timeoutMs`; inside network namespace
 * `netns` when given (tests). Resolves with stdout; rejects with a ToolError (a TypeError for an
 * unusable namespace name). `background`: the tool runs at a low CPU priority (a drift check's
 * read of a big table, ~1 s of nft's CPU at 10,000 containers, must not slow the nft runs of events
 * on a small host); it is set right after the spawn, and `ip netns exec` passes it on to the tool.
 */
export function runTool(command: readonly string[], input: string, netns: string | undefined, timeoutMs = TOOL_TIMEOUT_MS, background = false): Promise<string> {
  if (netns !== undefined && !NETNS.test(netns)) throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);
  const [file, ...argv] = netns === undefined ? command : ['ip', 'netns', 'exec', netns, ...command];
  const tool = basename(command[0] ?? '');
  return new Promise((resolve, reject) => {
    const child = execFile(
      file!,
      argv,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const timedOut = error.killed === true;
        const exitCode = typeof error.code === 'number' ? error.code : null;
        const reason = timedOut ? `killed after ${timeoutMs} ms` : (stderr.trim().split('\n')[0] || error.message);
        reject(new ToolError(`${tool}: ${reason}`, tool, exitCode, timedOut, stderr));
      },
    );
    if (background && child.pid !== undefined) {
      try {
        setPriority(child.pid, BACKGROUND_NICENESS);
      } catch {
        // Already exited: nothing left to lower.
      }
    }
    // The tool may exit before reading all its input; its exit status says why, so EPIPE adds nothing.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
