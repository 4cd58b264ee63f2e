/**
 * The nftables applier: runs `nft` with an argument array (never a shell), the script on stdin.
 * nft applies a whole script as one kernel transaction, so a failed run changes nothing; retries are
 * the caller's business. `netns` runs nft inside a named network namespace (tests).
 */
import type { WouldDrop } from '../firewall/backend.js';
import { quotedLine, runTool, ToolError } from '../firewall/run-tool.js';
import {
  WILDCARD, parseAddress, type AllowElement, type EndpointElement, type Family, type FirewallPlan, type PortElement,
} from '../../domain/firewall/plan.js';
import { parseCidr } from '../../domain/net/cidr.js';
import type { Protocol } from '../../domain/facts.js';
import type { Cidr } from '../../domain/policy/model.js';
import { ALLOW_SHARDS, AUDIT_SETS, SET_TYPES, TABLE, allowShard, renderTable, type SetName } from './render.js';

export interface NftOptions {
  /** Run inside this network namespace (`ip netns exec NAME nft …`). */
  readonly netns?: string;
}

/** A `list` that is background work (drift checks): nft at a low CPU priority. */
export interface ListOptions extends NftOptions {
  readonly background?: boolean;
}

export interface RunOptions extends NftOptions {
  /** `nft -c`: validate against the kernel, change nothing. */
  readonly check?: boolean;
}

/** What the kernel holds in `inet dockwarden`, for drift detection. */
export interface InstalledTable {
  readonly plan: FirewallPlan;
  /** Elements the plan shape cannot express (ranges, other protocols, other sets), as nft's JSON. */
  readonly foreign: readonly string[];
  /**
   * Set declarations, chains and rules as canonical JSON, without handles or counter values. Constant
   * for a given `defaultDeny`: compare it with the one read right after a full apply to detect edited rules.
   */
  readonly skeleton: string;
}

/** An nft failure; `line`/`inputLine` locate the script command nft's first error points to. */
export class NftError extends ToolError {
  override readonly name = 'NftError';
}

export const isNftError = (err: unknown): err is NftError => err instanceof NftError;

/** Applies (or with `check`, validates) an `nft -f` script in one transaction. */
export async function runNft(script: string, options: RunOptions = {}): Promise<void> {
  await nft(options.check ? ['-c', '-f', '-'] : ['-f', '-'], script, options);
}

/** The table (`inet dockwarden`, or the guard's) as the kernel has it; null when it does not exist. */
export async function listTable(options: ListOptions = {}, table = TABLE): Promise<InstalledTable | null> {
  const json = await listJson(['table', ...table.split(' ')], options);
  return json === null ? null : parseTable(json);
}

/**
 * Whether the table (`inet dockwarden`) exists, from `nft list tables`: names only, where `listTable`
 * prints and parses every element (seconds at 10,000 containers) to answer the same at start-up.
 */
export async function tableExists(options: NftOptions = {}, table = TABLE): Promise<boolean> {
  const [family = ''] = table.split(' ');
  const tables = await nft(['list', 'tables', family], '', options);
  return tables.split('\n').includes(`table ${table}`);
}

/** Lets pending I/O and timers run (events), then goes on: what a long parse or comparison awaits between its turns. */
export const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Elements parsed between two turns given to other work. */
const ELEMENTS_PER_TURN = 2_000;

/**
 * The table's skeleton (its sets as declared, chains and rules) as `InstalledTable.skeleton`, from
 * `nft -t` (terse: no set elements), which a replace records for later drift checks: not printing and
 * parsing every element, the bulk of the table with many containers.
 */
export async function listSkeleton(options: ListOptions = {}, table = TABLE): Promise<string | null> {
  const json = await listJson(['table', ...table.split(' ')], options, true);
  return json === null ? null : (await parseTable(json)).skeleton;
}

/** `nft -j list <args>` (`terse`: `nft -j -t`, without set elements), parsed; null when what it lists does not exist. */
export async function listJson(args: readonly string[], options: ListOptions = {}, terse = false): Promise<Json | null> {
  const stdout = await listOrNull(['-j', ...(terse ? ['-t'] : []), 'list', ...args], options);
  if (stdout === null) return null;
  try {
    return JSON.parse(stdout) as Json;
  } catch {
    throw new NftError(`nft: \`list ${args[0] ?? ''}\` printed invalid JSON`, 'nft', 0, false, '');
  }
}

/** The table in nft's own syntax (`nft list table`), or null when it does not exist. */
export function showTable(options: NftOptions = {}): Promise<string | null> {
  return listOrNull(['list', 'table', 'inet', 'dockwarden'], options);
}

/** `nft <args>` (a `list` command); null when what it lists does not exist. */
export async function listOrNull(args: readonly string[], options: ListOptions = {}): Promise<string | null> {
  try {
    return await nft(args, '', options);
  } catch (err) {
    if (isNftError(err) && /^Error: No such file or directory/m.test(err.stderr)) return null;
    throw err;
  }
}

/** Whether nft runs here and the kernel accepts our table (concatenated interval sets, fib, ct status). */
export function nftAvailable(options: NftOptions = {}): Promise<boolean> {
  const empty: FirewallPlan = { ports: [], allows: [], endpoints: [], bridges: [], defaultDeny: true, routed4: [], routed6: [], otherBridges: [] };
  return nftAccepts(renderTable(empty), options);
}

/** Whether nft runs here and the kernel would take `script` (checked, not applied). */
export async function nftAccepts(script: string, options: NftOptions = {}): Promise<boolean> {
  try {
    await runNft(script, { ...options, check: true });
    return true;
  } catch {
    return false;
  }
}

async function nft(args: readonly string[], input: string, { netns, background }: ListOptions): Promise<string> {
  try {
    return await runTool(['nft', ...args], input, netns, undefined, background);
  } catch (failure) {
    throw failure instanceof ToolError ? toNftError(failure, input) : failure;
  }
}

/** nft points at the failing command: `/dev/stdin:LINE:COL-COL: Error: MESSAGE` (an included script: its path, nft-session.ts). */
const LOCATED = /^(?:\/dev\/stdin|-|\/[^:\n]+\.nft):(\d+):\d+(?:-\d+)?: Error: (.*)$/m;

/** A tool failure of nft as an NftError, located in `script` where nft says. */
export function toNftError(failure: ToolError, script: string): NftError {
  const { tool, exitCode, timedOut, stderr } = failure;
  const located = timedOut ? null : LOCATED.exec(stderr);
  if (located) {
    const line = Number(located[1]);
    const quoted = quotedLine(script, line);
    return new NftError(`nft: ${located[2]} (line ${line}: ${quoted.shown})`, tool, exitCode, timedOut, stderr, line, quoted.text);
  }
  const said = timedOut ? null : /^Error: (.*)$/m.exec(stderr)?.[1];
  return new NftError(said ? `nft: ${said}` : failure.message, tool, exitCode, timedOut, stderr);
}

// --- `nft -j list table` → InstalledTable

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const isObject = (value: Json | undefined): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const PROTOCOLS: ReadonlySet<Json> = new Set<Protocol>(['tcp', 'udp', 'sctp']);

async function parseTable(json: Json): Promise<InstalledTable> {
  const objects = isObject(json) && Array.isArray(json.nftables) ? json.nftables.filter(isObject) : [];
  const ports: PortElement[] = [];
  const allows: AllowElement[] = [];
  const endpoints: EndpointElement[] = [];
  const interfaces: Record<InterfaceSet, string[]> = { bridges: [], routed4: [], routed6: [], otherBridges: [] };
  const foreign: string[] = [];
  const skeleton: Json[] = [];
  let defaultDeny = false;
  let audit = false;
  let parsedCount = 0;

  for (const object of objects) {
    if (isObject(object.set)) {
      const { elem = [], handle: _handle, ...declaration } = object.set;
      skeleton.push({ set: declaration });
      const name = String(object.set.name);
      if (Object.hasOwn(AUDIT_SETS, name)) continue; // filled by packets, not by us
      for (const element of Array.isArray(elem) ? elem : [elem]) {
        const parsed = parseElement(name, element);
        if (!parsed) foreign.push(JSON.stringify({ [name]: element }));
        else if (parsed.kind === 'allow') allows.push(parsed.element);
        else if (parsed.kind === 'port') ports.push(parsed.element);
        else if (parsed.kind === 'endpoint') endpoints.push(parsed.element);
        else interfaces[parsed.set].push(parsed.element);
        if (++parsedCount % ELEMENTS_PER_TURN === 0) await nextTurn();
      }
    } else if (isObject(object.chain)) {
      const { handle: _handle, ...chain } = object.chain;
      skeleton.push({ chain });
    } else if (isObject(object.rule)) {
      const { handle: _handle, ...rule } = object.rule;
      skeleton.push({ rule });
      if (rule.chain === 'bridged' && JSON.stringify(rule.expr).includes('{"jump":{"target":"published"}}')) defaultDeny = true;
      if (rule.chain === 'decide4' && JSON.stringify(rule.expr).includes('"set":"@audit4"')) audit = true;
    }
  }
  return { plan: { ports, allows, endpoints, ...interfaces, defaultDeny, ...(audit ? { audit } : {}) }, foreign, skeleton: comparableJson(skeleton) };
}

/** What @audit4 and @audit6 hold now; empty when the table is not there. */
/** Each is a source's new connections to one host address and port since its element was made. */
export async function listAuditCounts(options: NftOptions = {}): Promise<WouldDrop[]> {
  const counts: WouldDrop[] = [];
  for (const set of Object.keys(AUDIT_SETS)) {
    const json = await listJson(['set', 'inet', 'dockwarden', set], options);
    for (const elem of setElements(json)) {
      const parts = isObject(elem.val) && Array.isArray(elem.val.concat) ? elem.val.concat : [];
      const [source, hostAddress, proto, port] = parts;
      const packets = isObject(elem.counter) ? elem.counter.packets : undefined;
      if (typeof source !== 'string' || typeof hostAddress !== 'string' || !PROTOCOLS.has(proto ?? null) || typeof port !== 'number' || typeof packets !== 'number') continue;
      counts.push({ source, hostAddress, proto: proto as Protocol, port, connections: packets });
    }
  }
  return counts;
}

/** `{"nftables": [{"set": {"elem": [{"elem": {"val", "counter"}}]}}]}` → the inner elem objects of the set (the first, or the one named). */
export function setElements(json: Json | null, name?: string): Array<{ [key: string]: Json }> {
  const objects = isObject(json) && Array.isArray(json.nftables) ? json.nftables : [];
  const set = objects.map((o) => (isObject(o) ? o.set : undefined)).find((s) => isObject(s) && (name === undefined || s.name === name));
  const elems = isObject(set) && Array.isArray(set.elem) ? set.elem : [];
  return elems.map((e) => (isObject(e) ? e.elem : undefined)).filter(isObject);
}

/**
 * nft's JSON as text for comparing contents: counter values (they change with traffic) as null, and a
 * `socket cgroupv2` match's path too (nft prints the path by searching /sys/fs/cgroup for a file with
 * the cgroup's id as its inode number, so on a hybrid host, with v1 hierarchies beside the v2 one, it
 * may print another file, and which one changes with the v1 trees: not a change of the rule).
 * `dropHandles`: without the `handle` keys (numbers the kernel gives, new at every replace) and the
 * `metainfo` object (nft's version). In one pass of JSON.stringify: copying every object to blank them
 * was most of a table's parse (profile).
 */
export function comparableJson(value: Json, dropHandles = false): string {
  return JSON.stringify(value, function (this: Json, key: string, v: Json) {
    if (key === 'counter') return null;
    if (dropHandles && (key === 'handle' || key === 'metainfo')) return undefined;
    if (key === 'right' && isObject(this) && isObject(this.left) && isObject(this.left.socket) && this.left.socket.key === 'cgroupv2') return null;
    return v;
  });
}

type ParsedElement =
  | { readonly kind: 'port'; readonly element: PortElement }
  | { readonly kind: 'allow'; readonly element: AllowElement }
  | { readonly kind: 'endpoint'; readonly element: EndpointElement }
  | { readonly kind: 'interface'; readonly set: InterfaceSet; readonly element: string };

/** The sets of interface names. */
type InterfaceSet = 'bridges' | 'routed4' | 'routed6' | 'otherBridges';
const INTERFACE_SETS: ReadonlySet<SetName> = new Set<InterfaceSet>(['bridges', 'routed4', 'routed6', 'otherBridges']);

/** `allow4_07` → family 4, shard 7. */
const ALLOW_SET = /^allow([46])_(\d\d)$/;

/** An element as `renderTable` puts it in set `set` (see render.ts for the layout); null for anything else. */
function parseElement(set: string, element: Json): ParsedElement | null {
  if (INTERFACE_SETS.has(set as SetName)) return typeof element === 'string' ? { kind: 'interface', set: set as InterfaceSet, element } : null;
  const parts = isObject(element) && Array.isArray(element.concat) ? element.concat : [];
  const shard = ALLOW_SET.exec(set);
  if (!shard && !Object.hasOwn(SET_TYPES, set)) return null;
  const family: Family = (shard ? shard[1] : set.slice(-1)) === '4' ? 4 : 6;
  // The host side: nothing (a wildcard binding) or a single address, then protocol and port.
  const wildcard = set.startsWith('wildcard') || set.startsWith('openwildcard');
  const [first, proto, port, source] = wildcard ? [null, ...parts] : parts;
  if (!PROTOCOLS.has(proto ?? null) || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  const key = { proto: proto as Protocol, port };
  const length = wildcard ? 2 : 3;
  if (set.startsWith('endpoints')) {
    const addr = typeof first === 'string' ? parseAddress(first) : null;
    const hostPort = source;
    const validHostPort = typeof hostPort === 'number' && Number.isInteger(hostPort) && hostPort >= 1 && hostPort <= 65535;
    return parts.length === 4 && validHostPort && addr?.family === family ? { kind: 'endpoint', element: { addr, ...key, hostPort } } : null;
  }
  if (shard) {
    const hostAddr = parseBlock(first, family);
    const sourceBlock = parseBlock(source, family);
    const placed = Number(shard[2]) < ALLOW_SHARDS && allowShard(port) === Number(shard[2]);
    return parts.length === 4 && placed && hostAddr && sourceBlock && sourceBlock.prefix > 0 && (hostAddr.prefix === 0 || hostAddr.prefix === fullPrefix(family))
      ? { kind: 'allow', element: { hostAddr, ...key, source: sourceBlock } } : null;
  }
  const hostAddr = wildcard ? WILDCARD[family] : typeof first === 'string' && !first.includes('/') ? parseBlock(first, family) : null;
  if (!hostAddr || parts.length !== length) return null;
  if (set.startsWith('open')) return { kind: 'allow', element: { hostAddr, ...key, source: WILDCARD[family] } };
  return { kind: 'port', element: { hostAddr, ...key } };
}

const fullPrefix = (family: Family): number => (family === 4 ? 32 : 128);

/** nft prints a full-length prefix as a bare address and any other as `{"prefix": {"addr", "len"}}`. */
function parseBlock(value: Json | undefined, family: 4 | 6): Cidr | null {
  const [addr, len] = typeof value === 'string' ? [value, family === 4 ? 32 : 128]
    : isObject(value) && isObject(value.prefix) ? [value.prefix.addr, value.prefix.len] : [null, null];
  if (typeof addr !== 'string' || addr.includes('/') || typeof len !== 'number') return null;
  const block = parseCidr(`${addr}/${len}`);
  return block?.family === family && block.address === parseAddress(addr)?.text ? block : null;
}
