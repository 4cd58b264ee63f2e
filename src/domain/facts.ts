import type { Capability } from './capabilities.js';

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
}

/** One `docker exec`, from `GET /exec/{id}/json`. Healthchecks are execs too, never privileged. */
export interface ExecFacts {
  readonly id: string;
  readonly privileged: boolean;
  /** Entrypoint and arguments, as given (untrusted). */
  readonly command: readonly string[];
  readonly user: string;
  readonly running: boolean;
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
}

export interface ContainerState {
  readonly running: boolean;
  readonly status: string;
  /** Host pid of the init process; 0 when not running. */
  readonly pid: number;
  readonly startedAt: string;
}

export type Protocol = 'tcp' | 'udp' | 'sctp';

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
}

export interface ResourceLimits {
  /** Bytes; 0 = unlimited. */
  readonly memory: number;
  /** 0 or negative = unlimited. */
  readonly pidsLimit: number;
  /** NanoCPUs or quota/period; 0 = unlimited. */
  readonly cpus: number;
}
