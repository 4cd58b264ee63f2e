/**
 * The iptables applier: runs `iptables-restore --noflush` (payload on stdin) and `iptables -S`, by
 * argument array, never a shell, always with `-w` (wait for the xtables lock rather than fail). One
 * restore is one atomic commit of table `filter`: a failed run changes nothing. `variant` picks the
 * binaries explicitly (`iptables-nft…` or `iptables-legacy…`), never whatever `iptables` points to;
 * `netns` runs them inside a named network namespace (tests).
 */
import { quotedLine, runTool, ToolError } from '../firewall/run-tool.js';
import type { Family, FirewallPlan } from '../../domain/firewall/plan.js';
import { AUDIT_LIST, CHAIN, INPUT_CHAIN, INPUT_JUMP_RULE, JUMP_RULE, USER_CHAIN, renderRemoval, renderRestore, type UserChainState } from './render.js';

export interface IptablesOptions {
  readonly variant: 'nft' | 'legacy';
  /** Run inside this network namespace (`ip netns exec NAME …`). */
  readonly netns?: string;
}

/** What table `filter` of one family holds of ours. */
export interface FilterState {
  /** The chain's rules as `iptables -S` prints them; null when the chain does not exist. */
  readonly chain: readonly string[] | null;
  readonly userChain: UserChainState;
  /** The same for `DOCKWARDEN-INPUT` and our jump in INPUT. */
  readonly inputChain: readonly string[] | null;
  readonly input: UserChainState;
}

/** An iptables or iptables-restore failure; `line`/`inputLine` locate the payload line a restore reports as failed. */
export class IptablesError extends ToolError {
  override readonly name = 'IptablesError';
}

export const isIptablesError = (err: unknown): err is IptablesError => err instanceof IptablesError;

/** Replaces both chains and makes each jump the one first rule of DOCKER-USER and INPUT, in one commit. */
export async function applyChain(plan: FirewallPlan, family: Family, options: IptablesOptions): Promise<void> {
  const { userChain, input } = await readFilter(family, options);
  await restore(renderRestore(plan, family, userChain, input), family, options);
}

/** Deletes our jumps and chains; nothing to do when none is there. */
export async function removeChain(family: Family, options: IptablesOptions): Promise<void> {
  const { chain, userChain, inputChain, input } = await readFilter(family, options);
  if (chain !== null || userChain.jumps > 0 || inputChain !== null || input.jumps > 0) {
    await restore(renderRemoval(userChain, chain !== null, input, inputChain !== null), family, options);
  }
}

/**
 * Reads the whole table with `iptables -S`: `-S CHAIN` cannot tell a missing chain from a failure
 * (iptables-nft 1.8.9 calls a missing chain "incompatible"), and one listing is one consistent view.
 */
export async function readFilter(family: Family, options: IptablesOptions): Promise<FilterState> {
  const lines = (await run(family, 'iptables', ['-w', '-S'], '', options)).split('\n');
  const rulesOf = (chain: string): string[] => lines.filter((line) => line.startsWith(`-A ${chain} `));
  const exists = (chain: string): boolean => lines.includes(`-N ${chain}`);
  const jumpState = (from: string, jump: string, fromExists: boolean): UserChainState => {
    const rules = rulesOf(from);
    return { exists: fromExists, jumps: rules.filter((rule) => rule === jump).length, jumpFirst: rules[0] === jump };
  };
  return {
    chain: exists(CHAIN) ? rulesOf(CHAIN) : null,
    userChain: jumpState(USER_CHAIN, JUMP_RULE, exists(USER_CHAIN)),
    inputChain: exists(INPUT_CHAIN) ? rulesOf(INPUT_CHAIN) : null,
    input: jumpState('INPUT', INPUT_JUMP_RULE, true),
  };
}

const RECENT_DIR = '/proc/net/xt_recent';
/** `src=198.51.100.7 ttl: 64 last_seen: 4297703325 oldest_pkt: 3 4297703308, 4297703317, 4297703325` */
const RECENT_ENTRY = /^src=([0-9a-f.:]+) ttl: \d+ last_seen: \d+ oldest_pkt: \d+ ?([\d, ]*)$/;

/** One source in one of our xt_recent lists, with the jiffies of its last packets (at most 32, the list's default). */
export interface RecentEntry {
  readonly list: string;
  readonly source: string;
  readonly stamps: readonly number[];
}

/** Every entry of our audit lists (`dw-…` in /proc/net/xt_recent); none when there are none. */
export async function readAuditLists(options: IptablesOptions): Promise<RecentEntry[]> {
  const names = (await runTool(['ls', '-1', RECENT_DIR], '', options.netns).catch(() => '')).split('\n').filter((name) => AUDIT_LIST.test(name));
  if (names.length === 0) return [];
  // grep -H prefixes each line with its file; `^` matches every line. It fails when every list is empty
  // (nothing to read) or one went away meanwhile (its rule was removed): read again at the next poll.
  const out = await runTool(['grep', '-H', '^', ...names.map((name) => `${RECENT_DIR}/${name}`)], '', options.netns).catch(() => '');
  return out.split('\n').flatMap((line) => {
    const at = line.indexOf(':src=');
    const entry = at < 0 ? null : RECENT_ENTRY.exec(line.slice(at + 1));
    if (!entry) return [];
    const stamps = entry[2]!.split(',').map((stamp) => Number(stamp.trim())).filter((stamp) => Number.isSafeInteger(stamp) && stamp > 0);
    return [{ list: line.slice(RECENT_DIR.length + 1, at), source: entry[1]!, stamps }];
  });
}

/** Applies one `*filter … COMMIT` payload atomically. */
export async function restore(payload: string, family: Family, options: IptablesOptions): Promise<void> {
  await run(family, 'iptables-restore', ['-w', '--noflush'], payload, options);
}

/** `iptables-nft`, `ip6tables-legacy-restore`, …: the binary of one family, variant and tool. */
function binary(family: Family, tool: 'iptables' | 'iptables-restore', variant: IptablesOptions['variant']): string {
  if (variant !== 'nft' && variant !== 'legacy') throw new TypeError(`invalid iptables variant ${JSON.stringify(variant)}`);
  const base = family === 4 ? 'iptables' : 'ip6tables';
  return tool === 'iptables' ? `${base}-${variant}` : `${base}-${variant}-restore`;
}

async function run(family: Family, tool: 'iptables' | 'iptables-restore', args: readonly string[], input: string, { variant, netns }: IptablesOptions): Promise<string> {
  const command = [binary(family, tool, variant), ...args];
  try {
    return await runTool(command, input, netns);
  } catch (failure) {
    throw failure instanceof ToolError ? toIptablesError(failure, input) : failure;
  }
}

/** Restore names the payload line it failed on: a parse error, or a rule the kernel refused at commit. */
const FAILED_LINE = /^Error occurred at line: (\d+)$|line (\d+) failed/m;

function toIptablesError(failure: ToolError, payload: string): IptablesError {
  const { tool, exitCode, timedOut, stderr } = failure;
  const messages = stderr.split('\n').map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('Try `') && !line.startsWith('Error occurred at line'));
  const reason = timedOut || messages.length === 0 ? failure.message : `${tool}: ${messages.join('; ')}`;
  const failed = timedOut ? null : FAILED_LINE.exec(stderr);
  if (!failed) return new IptablesError(reason, tool, exitCode, timedOut, stderr);
  const line = Number(failed[1] ?? failed[2]);
  const quoted = quotedLine(payload, line);
  return new IptablesError(`${reason} (line ${line}: ${quoted.shown})`, tool, exitCode, timedOut, stderr, line, quoted.text);
}
