import type { Capability } from './capabilities.js';
import type { SignatureVerdict } from './image-signature.js';
import type { SeccompProfileFacts } from './seccomp-profile.js';

/**
 * Everything dockwarden judges a container on, normalised from `docker inspect`, the image and
 * `/proc/<pid>/status`. Every string here is untrusted input: it may be compared, never interpolated.
 */
export interface ContainerFacts {
  readonly id: string;
  /** Without dockerd's leading `/`. */
  readonly name: string;
  readonly image: ImageFacts;
  readonly labels: Readonly<Record<string, string>>;
  readonly state: ContainerState;
  readonly ports: readonly PublishedPort[];
  readonly networks: readonly NetworkAttachment[];
  readonly mounts: readonly MountFacts[];
  readonly devices: readonly DeviceMapping[];
  readonly capabilities: CapabilityFacts;
  readonly privileged: boolean;
  readonly hostNamespaces: HostNamespaces;
  readonly security: SecurityOptions;
  /** `Config.User` (image default merged in by dockerd); empty means root. */
  readonly user: string;
  readonly resources: ResourceLimits;
  readonly restartPolicy: { readonly name: string; readonly maximumRetryCount: number };
  readonly mountLabel: string;
  readonly processLabel: string;
  /** `docker exec` processes dockerd still knows (running ones, and the one an exec event named). */
  readonly execs: readonly ExecFacts[];
  /** `HostConfig.DeviceCgroupRules` as given (untrusted): `type major:minor access`, beyond Docker's defaults. */
  readonly deviceCgroupRules: readonly string[];
  /** `/proc` and `/sys` paths hidden and made read-only in the container (privileged: none). */
  readonly systemPaths: { readonly masked: readonly string[]; readonly readOnly: readonly string[] };
  /** Namespaces joined from another container (`--pid|--network|--ipc container:X`), followed to their end. */
  readonly joinedNamespaces: readonly NamespaceJoin[];
  /** `Uid:` of the init process from `/proc/<pid>/status`; null when it could not be read (not running, gone). */
  readonly processUids: ProcessUids | null;
  /**
   * An exec event named this container, but which exec it was cannot be told: dockerd copies the
   * container's labels over its own event attributes, and the container has an `execID` label.
   */
  readonly execHiddenByLabel: boolean;
  /** Processes of the container, init included, read from its cgroup (at most a bounded number); empty when not running. */
  readonly processes: readonly ProcessFacts[];
  /** Processes the cgroup listed beyond that bound, not read. */
  readonly processesUnread: number;
  /** Whether writes to `/` are refused: the mount table's word while it can be read, else `ReadonlyRootfs`. */
  readonly rootFilesystem: { readonly readOnly: boolean; readonly judgedOn: 'mount table' | 'configuration' };
  /** `HostConfig.CgroupParent` as given (untrusted); empty for the engine's default. */
  readonly cgroupParent: string;
  /** `HostConfig.Ulimits`: the container's overrides of the engine's defaults, names as given (untrusted). */
  readonly ulimits: readonly { readonly name: string; readonly soft: number; readonly hard: number }[];
  readonly healthcheck: HealthcheckFacts;
  /** Propagation of each bind and volume mount, by destination. */
  readonly mountPropagation: readonly MountPropagation[];
}

export interface HealthcheckFacts {
  /**
   * The argv each healthcheck exec runs (`CMD` as given, `CMD-SHELL` through the container's shell),
   * from the container's `Config.Healthcheck`, else the image's (dockerd merges them at create); null: none.
   */
  readonly command: readonly string[] | null;
  /** `NONE` (`--no-healthcheck`) turned off what the image has. */
  readonly disabled: boolean;
  /** Whether the image itself has a healthcheck; null when the image could not be inspected. */
  readonly image: boolean | null;
}

export interface MountPropagation {
  readonly destination: string;
  /** As configured (`Propagation`, or the `-v` mode's); empty when not given. */
  readonly configured: string;
  /** The kernel's word: the container's mount table has `shared:N` on it; null when the table could not be read. */
  readonly shared: boolean | null;
}

/** The host's view of a process's user ids. */
export interface ProcessUids {
  readonly real: number;
  readonly effective: number;
  readonly saved: number;
  readonly filesystem: number;
}

export type JoinableNamespace = 'pid' | 'net' | 'ipc';

export interface NamespaceJoin {
  readonly namespace: JoinableNamespace;
  /** Names of the containers followed (or the reference as written, for one that no longer exists). */
  readonly through: readonly string[];
  /** Whether it is the host's namespace; null when neither the chain nor the process could tell. */
  readonly host: boolean | null;
  /** `inspect`: the chain of containers ended in `host` or a private namespace; `process`: the chain broke
   * (a container gone, a chain too long) and the process's namespace was compared with the host's. */
  readonly judgedBy: 'inspect' | 'process' | 'none';
}

/** One process of a container, from `/proc/<pid>/status`. */
export interface ProcessFacts {
  /** Host pid. */
  readonly pid: number;
  /** `Name:`, the process's own choice (untrusted). */
  readonly comm: string;
  /** CapEff: what it can do now. */
  readonly effective: readonly Capability[];
  /** CapBnd: what it or its children can ever gain (a setuid binary, a file capability). */
  readonly bounding: readonly Capability[];
}

/** One `docker exec`, from `GET /exec/{id}/json`. Healthchecks are execs too, never privileged. */
export interface ExecFacts {
  readonly id: string;
  readonly privileged: boolean;
  /** Entrypoint and arguments, as given (untrusted). */
  readonly command: readonly string[];
  readonly user: string;
  readonly running: boolean;
  /** The host's view of a running exec's uids (`/proc/<pid>/status`); null when finished or unreadable. */
  readonly uids: ProcessUids | null;
}

/** How logs and alerts name a container: its id, name and image reference as given (all untrusted: fields only). */
export interface ContainerRef {
  readonly id: string;
  readonly name: string;
  readonly image: string;
}

export function containerRef(facts: ContainerFacts): ContainerRef {
  return { id: facts.id, name: facts.name, image: facts.image.reference };
}

export interface ImageFacts {
  /** The reference the container was created with (`Config.Image`), as given. */
  readonly reference: string;
  /** `sha256:…` image id. */
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  /**
   * Cosign signature verdicts for what the policy's `signed-by` rules ask about this image, filled by
   * the signature verifier (app layer) before the image is judged; absent when none was looked up.
   */
  readonly signatures?: readonly SignatureVerdict[];
}

export interface ContainerState {
  readonly running: boolean;
  readonly status: string;
  /** Host pid of the init process; 0 when not running. */
  readonly pid: number;
  readonly startedAt: string;
}

export type Protocol = 'tcp' | 'udp' | 'sctp';
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp'];

export interface PublishedPort {
  readonly proto: Protocol;
  /** As dockerd reports it: `0.0.0.0`, `::`, or a specific host address. */
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
}

export interface NetworkAttachment {
  readonly name: string;
  readonly networkId: string;
  readonly ipv4: string;
  readonly ipv6: string;
  readonly mac: string;
}

export type MountType = 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster';

export interface MountFacts {
  readonly type: MountType;
  /** Host path as dockerd reports it (`Source`); empty for tmpfs. */
  readonly source: string;
  /** `source` with symlinks resolved on this host; equals `source` when it cannot be resolved. */
  readonly realSource: string;
  readonly destination: string;
  readonly rw: boolean;
  readonly mode: string;
  /** Volume name for `volume` mounts. */
  readonly name: string;
  readonly driver: string;
  /**
   * Every host path this mount really shows, which the mount checks and relabel refusals judge:
   * the source with symlinks resolved, or what a local volume's driver options mount instead of its
   * `_data` directory (the bind source, the block device); while the container runs, each host path
   * where its mount table's filesystem and root sit on the host; and the engine socket's own path
   * when the mounted file is that socket (same device and inode), whatever path or link it came by.
   */
  readonly hostPaths: readonly string[];
  /** What a local volume's driver options mount: a `bind` of a host path, a block `device`, a `network` filesystem; null for none. */
  readonly backing: 'bind' | 'device' | 'network' | null;
  /** The volume's `device` option with symlinks resolved; '' when there is none. */
  readonly device: string;
  /** Why what it mounts could not be (fully) found out in time; null when it was. */
  readonly unresolved: string | null;
}

export interface DeviceMapping {
  readonly pathOnHost: string;
  readonly pathInContainer: string;
  readonly permissions: string;
}

export interface CapabilityFacts {
  /** `--cap-add` / `--cap-drop`, normalised (`CAP_X` or `ALL`). */
  readonly added: readonly string[];
  readonly dropped: readonly string[];
  /** The bounding set the configuration grants (privileged → all). */
  readonly configured: readonly Capability[];
  /** CapEff of the init process; null when the process could not be read (gone, not running). */
  readonly effective: readonly Capability[] | null;
}

export interface HostNamespaces {
  readonly pid: boolean;
  readonly net: boolean;
  readonly ipc: boolean;
  readonly uts: boolean;
  readonly userns: boolean;
  readonly cgroup: boolean;
}

export interface SecurityOptions {
  /** `unconfined`, `default`, or a profile given inline/by path (`custom`). */
  readonly seccomp: 'default' | 'unconfined' | 'custom';
  /** AppArmor profile name; empty when none applies. */
  readonly apparmor: string;
  readonly noNewPrivileges: boolean;
  /** Values of `label=…` / `label:…` options (`disable`, `type:…`). */
  readonly labelOptions: readonly string[];
  /** A `custom` profile's verdict; null for `default` and `unconfined`. */
  readonly seccompProfile: SeccompProfileFacts | null;
}

export interface ResourceLimits {
  /** Bytes; 0 = unlimited. */
  readonly memory: number;
  /** 0 or negative = unlimited. */
  readonly pidsLimit: number;
  /** NanoCPUs or quota/period; 0 = unlimited. */
  readonly cpus: number;
  /** `--cpu-shares`, the CFS weight relative to other containers; 0 = not set (the kernel's default, 1024). */
  readonly cpuShares: number;
}
