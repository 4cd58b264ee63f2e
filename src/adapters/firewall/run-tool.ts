import { execFile, type ExecFileException } from 'node:child_process';
import { setPriority } from 'node:os';

export const TOOL_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 256 << 20;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/**
 * The niceness of a `background` run: beside one busy process at ours it gets about a tenth of a CPU
 * (CFS weights 110 : 1024), so events' runs go first, and even on a saturated host a read that takes
 * ~1 s of CPU (10,000 containers) ends well within TOOL_TIMEOUT_MS (at 19 it would get ~1.5%).
 */
const BACKGROUND_NICENESS = 10;

/** A netfilter tool that exited non-zero (or was killed), with what it said. */
export interface ToolFailure {
  readonly error: ExecFileException;
  readonly stderr: string;
}

/**
 * The one way dockwarden runs a tool (`nft`, `iptables-restore`, `semanage`, `ip`): by argument
 * array, never a shell, with `input` on stdin, killed after `timeoutMs`; inside network namespace
 * `netns` when given (tests). Resolves with stdout; rejects with a ToolFailure for the caller to turn
 * into its own typed error. `background`: the tool runs at a low CPU priority (a drift check's
 * read of a big table, ~1 s of nft's CPU at 10,000 containers, must not slow the nft runs of events
 * on a small host); it is set right after the spawn, and `ip netns exec` passes it on to the tool.
 */
export function runTool(command: readonly string[], input: string, netns: string | undefined, timeoutMs = TOOL_TIMEOUT_MS, background = false): Promise<string> {
  if (netns !== undefined && !NETNS.test(netns)) throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);
  const [file, ...argv] = netns === undefined ? command : ['ip', 'netns', 'exec', netns, ...command];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file!,
      argv,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT },
      (error, stdout, stderr) => (error ? reject({ error, stderr } satisfies ToolFailure) : resolve(stdout)),
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
