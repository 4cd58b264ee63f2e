import type { Capability } from './capabilities.js';

/**
 * Judging a custom seccomp profile (`--security-opt seccomp=<file>`; the CLI sends its JSON inline and
 * `docker inspect` shows it so). A filter on the process proves nothing: `{"defaultAction":
 * "SCMP_ACT_ALLOW"}` is one. What counts is whether the syscalls that matter for breaking out of a
 * container, which Docker's default profile refuses, get through.
 */

/**
 * Those syscalls, each with the capabilities under which Docker's default profile
 * (moby profiles/seccomp/default.json) lets it through (any one of them); `[]`: never.
 */
export const ESCAPE_SYSCALLS: ReadonlyMap<string, readonly Capability[]> = new Map<string, readonly Capability[]>([
  ['keyctl', []], ['add_key', []], ['request_key', []], ['kexec_load', []], ['kexec_file_load', []],
  ['mount', ['CAP_SYS_ADMIN']], ['umount2', ['CAP_SYS_ADMIN']], ['unshare', ['CAP_SYS_ADMIN']], ['setns', ['CAP_SYS_ADMIN']],
  ['bpf', ['CAP_SYS_ADMIN', 'CAP_BPF']], ['perf_event_open', ['CAP_SYS_ADMIN', 'CAP_PERFMON']],
  ['open_by_handle_at', ['CAP_DAC_READ_SEARCH']],
  ['init_module', ['CAP_SYS_MODULE']], ['finit_module', ['CAP_SYS_MODULE']], ['delete_module', ['CAP_SYS_MODULE']],
  ['reboot', ['CAP_SYS_BOOT']],
]);

/** Larger profiles are not parsed (Docker's own is ~13 KB of JSON). */
export const MAX_PROFILE_BYTES = 1 << 20;

export type SeccompProfileFacts =
  | {
      readonly readable: true;
      readonly defaultAction: string;
      /** Which of ESCAPE_SYSCALLS the profile lets this container call (its capabilities decide `includes`/`excludes`). */
      readonly allows: readonly string[];
    }
  | { readonly readable: false; readonly reason: string };

const ALLOWING = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG']);

interface Rule {
  readonly names: readonly string[];
  readonly allowing: boolean;
  /** Applies to this container, as far as its capabilities tell (dockerd's `includes.caps` / `excludes.caps`). */
  readonly applies: boolean;
  /** Narrowed by arguments, architecture or kernel version: it may not hold. */
  readonly conditional: boolean;
}

/**
 * What a profile (untrusted text) lets a container holding `capabilities` call. Over-estimates on
 * purpose: an allowing rule counts whatever its argument, architecture and kernel conditions; a
 * refusing rule only when it has none.
 */
export function readSeccompProfile(text: string, capabilities: readonly Capability[]): SeccompProfileFacts {
  if (Buffer.byteLength(text, 'utf8') > MAX_PROFILE_BYTES) return { readable: false, reason: `larger than ${MAX_PROFILE_BYTES} bytes` };
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch {
    return { readable: false, reason: 'not JSON' };
  }
  if (!isObject(profile) || typeof profile.defaultAction !== 'string') return { readable: false, reason: 'no defaultAction' };
  const rules = Array.isArray(profile.syscalls) ? profile.syscalls.map((r) => ruleOf(r, capabilities)) : [];
  if (rules.includes(undefined)) return { readable: false, reason: 'a syscall rule dockerd would not take' };
  const known = rules as Rule[];
  const defaultAllows = ALLOWING.has(profile.defaultAction);
  const allows = [...ESCAPE_SYSCALLS.keys()].filter((name) => {
    const naming = known.filter((r) => r.applies && r.names.includes(name));
    if (naming.some((r) => r.allowing)) return true;
    return defaultAllows && !naming.some((r) => !r.conditional);
  });
  return { readable: true, defaultAction: profile.defaultAction, allows };
}

/** Whether Docker's default profile would let a container holding `capabilities` call `syscall`. */
export function defaultProfileAllows(syscall: string, capabilities: readonly Capability[]): boolean {
  return (ESCAPE_SYSCALLS.get(syscall) ?? []).some((cap) => capabilities.includes(cap));
}

function ruleOf(rule: unknown, capabilities: readonly Capability[]): Rule | undefined {
  if (!isObject(rule) || typeof rule.action !== 'string') return undefined;
  const names = [...stringsOf(rule.names), ...(typeof rule.name === 'string' ? [rule.name] : [])];
  const includes = isObject(rule.includes) ? rule.includes : {};
  const excludes = isObject(rule.excludes) ? rule.excludes : {};
  const has = (cap: string) => (capabilities as readonly string[]).includes(cap);
  return {
    names,
    allowing: ALLOWING.has(rule.action),
    // dockerd: a rule applies when the container holds every `includes` capability and no `excludes` one.
    applies: stringsOf(includes.caps).every(has) && !stringsOf(excludes.caps).some(has),
    conditional:
      (Array.isArray(rule.args) && rule.args.length > 0) ||
      stringsOf(includes.arches).length > 0 ||
      stringsOf(excludes.arches).length > 0 ||
      typeof includes.minKernel === 'string',
  };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const stringsOf = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);
