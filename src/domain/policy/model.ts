import type { Capability } from '../capabilities.js';
import type { DeviceCgroupRule } from '../device-rules.js';
import type { Protocol } from '../facts.js';
import type { SigningKey } from '../image-signature.js';

/**
 * The validated, typed policy. Produced only by the loader (`load.ts`), which has already resolved
 * named source sets, parsed every address and port, and compiled every glob. Evaluation never re-parses.
 */
export interface Policy {
  readonly version: 1;
  readonly mode: Mode;
  /** Named source sets as written, for explain/status output. */
  readonly sources: ReadonlyMap<string, readonly Cidr[]>;
  readonly ports: PortsPolicy;
  readonly containers: ContainersPolicy;
  readonly images: ImagesPolicy;
  readonly volumes: VolumesPolicy;
  readonly network: NetworkPolicy;
  /** sha256 of the policy file's bytes: alerts and state name the policy they were decided under. */
  readonly hash: string;
  /** Where it was loaded from, for messages. */
  readonly file: string;
}

export type Mode = 'enforce' | 'audit';
export type Action = 'alert' | 'stop' | 'kill';
export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** An address block in canonical form: host bits cleared, `text` = `address/prefix`. */
export interface Cidr {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
  readonly text: string;
}

/** A port or inclusive port range with its protocol: `443/tcp`, `8000-8100/udp`. */
export interface PortRange {
  readonly proto: Protocol;
  readonly from: number;
  readonly to: number;
}

/** A compiled glob: the source text, and a matcher (`*` = within one `/` segment, `**` = anything, `?` = one char). */
export interface Glob {
  readonly pattern: string;
  readonly test: (value: string) => boolean;
}

/** All present fields must hold. An empty selector matches every container. */
export interface Selector {
  readonly container?: Glob;
  readonly image?: Glob;
  readonly labels?: ReadonlyMap<string, Glob>;
  readonly port?: PortRange;
  readonly containerPort?: PortRange;
}

/** One entry of an `allow` list, as written, with what it resolved to. */
export type SourceRef =
  | { readonly kind: 'any' }
  | { readonly kind: 'set'; readonly name: string; readonly cidrs: readonly Cidr[] }
  | { readonly kind: 'cidr'; readonly cidr: Cidr };

export interface PortRule {
  readonly name: string;
  /** 0-based position in `ports.rules`, for messages. */
  readonly index: number;
  readonly match: Selector;
  readonly allow: readonly SourceRef[];
}

export interface PortsPolicy {
  readonly default: 'deny' | 'allow';
  readonly rules: readonly PortRule[];
  readonly labels: 'ignore' | 'narrow';
}

/** The engine sockets a policy's `docker.sockets` lists when it names none. */
export const DEFAULT_DOCKER_SOCKETS = ['/var/run/docker.sock', '/run/docker.sock', '/run/containerd/containerd.sock', '/var/run/containerd/containerd.sock'];

/** Relabelling any of these (or `/`) would break the host: never a relabel root. */
export const REFUSED_RELABEL_ROOTS = ['/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib64', '/media', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/var', '/var/lib', '/var/log'];

export const CHECK_IDS = [
  'capabilities', 'privileged', 'host-namespaces', 'docker-socket', 'sensitive-mounts', 'devices',
  'privileged-exec', 'no-new-privileges', 'seccomp-unconfined', 'apparmor-unconfined', 'resource-limits',
  'root-user', 'unmasked-paths',
  // CIS Docker Benchmark §5 items (checks/cis-runtime.ts)
  'read-only-root', 'restart-policy', 'wildcard-bind', 'privileged-ports', 'mount-propagation', 'cgroup-parent',
  'healthcheck', 'ulimits', 'label-disabled', 'root-exec', 'default-bridge',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export const HOST_NAMESPACES = ['pid', 'net', 'ipc', 'uts', 'userns', 'cgroup'] as const;
export type HostNamespace = (typeof HOST_NAMESPACES)[number];

/** The image hygiene checks (CIS §4, checks/image-hygiene.ts): `images.latest-tag`, `images.healthcheck`. */
export const IMAGE_HYGIENE_CHECK_IDS = ['images.latest-tag', 'images.healthcheck'] as const;
export type ImageHygieneCheckId = (typeof IMAGE_HYGIENE_CHECK_IDS)[number];

/** `--ulimit` names dockerd takes (moby's go-units ulimit table). */
export const ULIMIT_NAMES = ['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'] as const;
export type UlimitName = (typeof ULIMIT_NAMES)[number];

export const RESOURCE_KINDS = ['memory', 'pids', 'cpu'] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export interface CheckSettings {
  readonly action: Action;
  readonly severity: Severity;
}

/** A check is on when present; absent checks are off. */
export interface ContainersPolicy {
  readonly capabilities?: CheckSettings & { readonly forbidden: readonly Capability[] };
  readonly privileged?: CheckSettings;
  readonly hostNamespaces?: CheckSettings & { readonly namespaces: readonly HostNamespace[] };
  readonly dockerSocket?: CheckSettings & { readonly paths: readonly string[] };
  readonly sensitiveMounts?: CheckSettings & { readonly paths: readonly string[]; readonly allowed: readonly string[]; readonly readOnlyAllowed: boolean };
  readonly devices?: CheckSettings & { readonly allowed: readonly string[]; readonly allowedCgroupRules: readonly DeviceCgroupRule[] };
  readonly privilegedExec?: CheckSettings;
  readonly noNewPrivileges?: CheckSettings;
  readonly seccompUnconfined?: CheckSettings;
  readonly apparmorUnconfined?: CheckSettings;
  readonly resourceLimits?: CheckSettings & { readonly require: readonly ResourceKind[] };
  readonly rootUser?: CheckSettings;
  readonly unmaskedPaths?: CheckSettings;
  readonly readOnlyRoot?: CheckSettings;
  /** `on-failure` may retry at most `maxRetries` times; `always` and `unless-stopped` fail. */
  readonly restartPolicy?: CheckSettings & { readonly maxRetries: number };
  readonly wildcardBind?: CheckSettings;
  readonly privilegedPorts?: CheckSettings;
  readonly mountPropagation?: CheckSettings;
  readonly cgroupParent?: CheckSettings & { readonly allowed: readonly string[] };
  readonly healthcheck?: CheckSettings;
  readonly ulimits?: CheckSettings & { readonly allowed: readonly UlimitName[] };
  readonly labelDisabled?: CheckSettings;
  readonly rootExec?: CheckSettings;
  readonly defaultBridge?: CheckSettings;
  readonly exceptions: readonly CheckException[];
  /** A `stop` sends SIGTERM and, this long after, SIGKILL (the container's own stop signal and timeout are not used). */
  readonly stopGraceSeconds: number;
}

export interface CheckException {
  readonly index: number;
  readonly match: Selector;
  readonly allow: readonly CheckId[];
}

/**
 * An image pattern over the normalised names the image's repo digests prove (`registry/path:tag`,
 * `registry/path@digest`); `official` = `docker.io/library/*`. A local image matches none.
 */
export interface ImageRule {
  readonly index: number;
  readonly match: Glob;
  readonly require: ImageRequirements;
}

/** What an image that a rule matches must also satisfy; all must hold. */
export interface ImageRequirements {
  /** The reference carries `@sha256:…`, and that digest is among the image's `RepoDigests` for that repository. */
  readonly digestPinned: boolean;
  /** A cosign signature by one of these keys must sign the manifest digest in this repository; empty: none required. */
  readonly signedBy: readonly SigningKey[];
  /** When the registry holding the signatures cannot be reached. */
  readonly onUnreachable: 'deny' | 'allow';
}

export interface ImagesPolicy {
  readonly rules: readonly ImageRule[];
  readonly default: 'deny' | 'allow';
  /** For images with no repo digest (built, committed or loaded here): no pattern matches them. `images.default` when not given. */
  readonly local: 'deny' | 'allow';
  /** Docker config.json holding registry credentials for signature reads; null: anonymous. */
  readonly registryAuth: string | null;
  /** Registries (`host[:port]`) whose signatures are read over plain HTTP. */
  readonly insecureRegistries: readonly string[];
  readonly action: Action;
  readonly severity: Severity;
  readonly exceptions: readonly Selector[];
  /** Image hygiene (CIS §4), on when present; `exceptions` excuse from these too. */
  readonly latestTag?: CheckSettings;
  readonly healthcheck?: CheckSettings;
}

/** A host directory made for matching containers when they mount it and it does not exist. */
export interface StorageDirectory {
  readonly index: number;
  readonly match: Selector;
  readonly path: string;
  readonly owner: { readonly uid: number; readonly gid: number };
  /** Permission bits, e.g. 0o750. */
  readonly mode: number;
}

export interface VolumesPolicy {
  readonly create: readonly StorageDirectory[];
  readonly selinux: {
    readonly relabel: 'shared' | 'private' | 'off';
    readonly roots: readonly string[];
  };
}

/** Bridge isolation: anti-spoofing filters on every container's bridge port but those of `exceptions`. */
export interface NetworkPolicy {
  readonly antiSpoofing: boolean;
  /** Docker network names. */
  readonly exceptions: readonly string[];
}
