import { execFile, type ExecFileException } from 'node:child_process';

export const TOOL_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 256 << 20;
const NETNS = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

/** A netfilter tool that exited non-zero (or was killed), with what it said. */
export interface ToolFailure {
  readonly error: ExecFileException;
  readonly stderr: string;
}

/**
 * The one way dockwarden runs a tool (`nft`, `iptables-restore`, `semanage`, `ip`): by argument
 * array, never a shell, with `input` on stdin, killed after `timeoutMs`; inside network namespace
 * `netns` when given (tests). Resolves with stdout; rejects with a ToolFailure for the caller to turn
 * into its own typed error.
 */
export function runTool(command: readonly string[], input: string, netns: string | undefined, timeoutMs = TOOL_TIMEOUT_MS): Promise<string> {
  if (netns !== undefined && !NETNS.test(netns)) throw new TypeError(`invalid network namespace name ${JSON.stringify(netns)}`);
  const [file, ...argv] = netns === undefined ? command : ['ip', 'netns', 'exec', netns, ...command];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file!,
      argv,
      { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT },
      (error, stdout, stderr) => (error ? reject({ error, stderr } satisfies ToolFailure) : resolve(stdout)),
    );
    // The tool may exit before reading all its input; its exit status says why, so EPIPE adds nothing.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
