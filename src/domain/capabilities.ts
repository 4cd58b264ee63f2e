/**
 * Linux capabilities, named and normalised the way dockerd does (moby oci/caps):
 * upper-case, `CAP_` prefix, `ALL` kept as a keyword. Index = capability number.
 */
import { boundedMemo } from './bounded-memo.js';

export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

export type Capability = (typeof CAPABILITIES)[number];

/** What `docker run` grants with no --cap-add/--cap-drop (moby oci/caps/defaults.go). */
export const DOCKER_DEFAULT_CAPABILITIES: readonly Capability[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const KNOWN = new Set<string>(CAPABILITIES);

export function isCapability(name: string): name is Capability {
  return KNOWN.has(name);
}

/** `sys_admin`, `SYS_ADMIN`, `cap_sys_admin` → `CAP_SYS_ADMIN`; `all` → `ALL`; unknown → undefined. */
export function normaliseCapability(raw: string): Capability | 'ALL' | undefined {
  const upper = raw.toUpperCase();
  if (upper === 'ALL') return 'ALL';
  const name = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  return isCapability(name) ? name : undefined;
}

/**
 * The bounding set dockerd gives a container (moby TweakCapabilities): privileged → all;
 * `--cap-add ALL` → all but the drops; `--cap-drop ALL` → only the adds; else defaults − drops + adds.
 * Names dockerd would reject are ignored here: dockerd refused to create such a container.
 */
export function configuredCapabilities(capAdd: readonly string[], capDrop: readonly string[], privileged: boolean): Capability[] {
  if (privileged) return [...CAPABILITIES].sort();
  const adds = capAdd.map(normaliseCapability).filter((c) => c !== undefined);
  const drops = capDrop.map(normaliseCapability).filter((c) => c !== undefined);
  const addOnly = adds.filter((c): c is Capability => c !== 'ALL');
  let caps: Capability[];
  if (adds.includes('ALL')) caps = CAPABILITIES.filter((c) => !drops.includes(c));
  else if (drops.includes('ALL')) caps = addOnly;
  else caps = [...DOCKER_DEFAULT_CAPABILITIES.filter((c) => !drops.includes(c)), ...addOnly];
  return [...new Set(caps)].sort();
}

/** Each capability with its bit, in name order: a decoded mask comes out sorted without a sort. */
const BY_NAME: ReadonlyArray<readonly [Capability, number]> = CAPABILITIES.map((c, bit) => [c, bit] as const).sort(([a], [b]) => (a < b ? -1 : 1));

/**
 * Masks decoded, by their text: the processes of a host's containers share a handful of masks. At most
 * 256 kept (a container chooses its processes' masks; the memo must not grow with them).
 */
const decoded = boundedMemo<readonly Capability[]>(256);

/**
 * Decodes a `/proc/<pid>/status` CapEff/CapBnd hex mask into capability names, sorted (unknown high bits ignored).
 * Two 32-bit halves, not a BigInt per bit: every process of every container is decoded at each sync.
 */
export function decodeCapabilityMask(hex: string): readonly Capability[] {
  return decoded(hex, () => {
    if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new Error(`not a capability mask: ${JSON.stringify(hex)}`);
    const low = parseInt(hex.slice(-8), 16);
    const high = hex.length > 8 ? parseInt(hex.slice(0, -8), 16) : 0;
    return Object.freeze(BY_NAME.filter(([, bit]) => ((bit < 32 ? low >>> bit : high >>> (bit - 32)) & 1) === 1).map(([c]) => c));
  });
}
