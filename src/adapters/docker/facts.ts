import { configuredCapabilities, decodeCapabilityMask, normaliseCapability, type Capability } from '../../domain/capabilities.js';
import { readSeccompProfile } from '../../domain/seccomp-profile.js';
import { DOCKER_MASKED_PATHS, DOCKER_READONLY_PATHS } from '../../domain/system-paths.js';
import type {
  CapabilityFacts,
  ContainerFacts,
  DeviceMapping,
  HealthcheckFacts,
  HostNamespaces,
  MountFacts,
  MountPropagation,
  MountType,
  NamespaceJoin,
  NetworkAttachment,
  ProcessUids,
  ProcessFacts,
  Protocol,
  PublishedPort,
  ResourceLimits,
  SecurityOptions,
} from '../../domain/facts.js';
import { entryAt, type MountEntry } from '../../domain/mount-map.js';
import type { MountView } from './mount-sources.js';

/**
 * The part of `GET /containers/{id}/json` that facts are made of, typed as dockerd really sends it
 * (nulls included). dockerode's `ContainerInspectInfo` is assignable to it.
 */
export interface ContainerInspect {
  readonly Id: string;
  readonly Name: string;
  readonly Image: string;
  readonly State: { readonly Status: string; readonly Running: boolean; readonly Pid: number; readonly StartedAt: string };
  readonly Config: {
    readonly Image: string;
    readonly User?: string | null;
    readonly Labels?: Readonly<Record<string, string>> | null;
    readonly Healthcheck?: Healthcheck | null;
    readonly Shell?: readonly string[] | null;
  };
  readonly HostConfig: {
    readonly CapAdd?: readonly string[] | null;
    readonly CapDrop?: readonly string[] | null;
    readonly Privileged?: boolean | null;
    readonly SecurityOpt?: readonly string[] | null;
    readonly PidMode?: string | null;
    readonly NetworkMode?: string | null;
    readonly IpcMode?: string | null;
    readonly UTSMode?: string | null;
    readonly UsernsMode?: string | null;
    readonly CgroupnsMode?: string | null;
    readonly Devices?: ReadonlyArray<{ readonly PathOnHost: string; readonly PathInContainer: string; readonly CgroupPermissions: string }> | null;
    readonly DeviceCgroupRules?: readonly string[] | null;
    readonly MaskedPaths?: readonly string[] | null;
    readonly ReadonlyPaths?: readonly string[] | null;
    readonly Memory?: number | null;
    readonly PidsLimit?: number | null;
    readonly NanoCpus?: number | null;
    readonly CpuQuota?: number | null;
    readonly CpuShares?: number | null;
    readonly CpuPeriod?: number | null;
    readonly RestartPolicy?: { readonly Name?: string; readonly MaximumRetryCount?: number } | null;
    readonly ReadonlyRootfs?: boolean | null;
    readonly CgroupParent?: string | null;
    readonly Ulimits?: ReadonlyArray<{ readonly Name?: string; readonly Soft?: number; readonly Hard?: number }> | null;
  };
  readonly NetworkSettings: {
    /** `"80/tcp": [{HostIp, HostPort}]`; null for a port that is exposed but not published. */
    readonly Ports?: Readonly<Record<string, ReadonlyArray<{ readonly HostIp: string; readonly HostPort: string }> | null>> | null;
    readonly Networks?: Readonly<
      Record<string, { readonly NetworkID: string; readonly IPAddress: string; readonly GlobalIPv6Address: string; readonly MacAddress: string }>
    > | null;
  };
  readonly Mounts?: ReadonlyArray<{
    readonly Type: string;
    readonly Name?: string;
    readonly Source: string;
    readonly Destination: string;
    readonly Driver?: string;
    readonly Mode: string;
    readonly RW: boolean;
    /** `rprivate`, `rshared`, …; empty for volumes. */
    readonly Propagation?: string;
    /**
     * Not in dockerd's inspect: the driver options of a volume that a create request would make, carried
     * by the gate (an existing volume's options are read from the engine).
     */
    readonly Options?: Readonly<Record<string, string>> | null;
  }> | null;
  /** Execs dockerd still holds for the container. */
  readonly ExecIDs?: readonly string[] | null;
  readonly AppArmorProfile?: string | null;
  readonly MountLabel?: string | null;
  readonly ProcessLabel?: string | null;
}

/** `Config.Healthcheck` of a container or an image: `Test` is `[NONE]`, `[CMD, argv…]` or `[CMD-SHELL, command]`. */
export interface Healthcheck {
  readonly Test?: readonly string[] | null;
}

/** The part of `GET /exec/{id}/json` facts use. */
export interface ExecInspect {
  readonly ID: string;
  readonly ContainerID: string;
  readonly Running: boolean;
  /** Host pid of a running exec; 0 when it is not running. */
  readonly Pid?: number;
  readonly ProcessConfig: { readonly entrypoint: string; readonly arguments?: readonly string[] | null; readonly privileged: boolean; readonly user?: string };
}

export interface FactsInput {
  /** `RepoTags`/`RepoDigests` (and healthcheck) of the container's image; null when the image is gone. */
  readonly image: {
    readonly RepoTags?: readonly string[] | null;
    readonly RepoDigests?: readonly string[] | null;
    readonly Config?: { readonly Healthcheck?: Healthcheck | null } | null;
  } | null;
  /** Text of `/proc/<pid>/status` of the init process; null when it could not be read. */
  readonly procStatus: string | null;
  /** Resolves a host path's symlinks; returns the path itself when it cannot. */
  readonly realpath: (path: string) => string;
  /** Inspections of the container's execs that still existed when read. */
  readonly execs: readonly ExecInspect[];
  /** `/proc/<pid>/status` of running execs, by exec id (read only when it is still the container's). */
  readonly execStatus?: ReadonlyMap<string, string>;
  /** Where its `container:X` namespace modes lead (read-facts follows them); none when absent. */
  readonly joinedNamespaces?: readonly NamespaceJoin[];
  /** An exec event named this container, but its exec id was the container's own `execID` label. */
  readonly execHiddenByLabel: boolean;
  /** `/proc/<pid>/status` of each process read from the container's cgroup (init included). */
  readonly processes: ReadonlyArray<{ readonly pid: number; readonly status: string }>;
  /** Processes the cgroup listed beyond the bound, not read. */
  readonly processesUnread: number;
  /** What each host-path mount really is, by destination (mount-sources); without it, the request is taken as given. */
  readonly mountViews?: ReadonlyMap<string, MountView>;
  /** The container's mount table (its init's mountinfo); null or absent when not running or unreadable. */
  readonly mountTable?: readonly MountEntry[] | null;
}

/** Maps what dockerd and procfs report into `ContainerFacts`. Pure: all I/O happens in read-facts. */
export function toContainerFacts(inspect: ContainerInspect, input: FactsInput): ContainerFacts {
  const host = inspect.HostConfig;
  const privileged = host.Privileged === true;
  const status = input.procStatus === null ? null : parseProcStatus(input.procStatus);
  const capabilities = capabilitiesOf(host.CapAdd ?? [], host.CapDrop ?? [], privileged, status);
  const joinedNamespaces = input.joinedNamespaces ?? [];
  return {
    id: inspect.Id,
    name: inspect.Name.replace(/^\//, ''),
    image: {
      reference: inspect.Config.Image,
      id: inspect.Image,
      repoTags: [...(input.image?.RepoTags ?? [])],
      repoDigests: [...(input.image?.RepoDigests ?? [])],
    },
    labels: labelsOf(inspect.Config.Labels),
    state: {
      running: inspect.State.Running,
      status: inspect.State.Status,
      pid: inspect.State.Pid,
      startedAt: inspect.State.StartedAt,
    },
    ports: publishedPorts(inspect.NetworkSettings.Ports),
    networks: networksOf(inspect.NetworkSettings.Networks),
    mounts: mountsOf(inspect.Mounts, input.realpath, input.mountViews),
    devices: (host.Devices ?? []).map(
      (d): DeviceMapping => ({ pathOnHost: d.PathOnHost, pathInContainer: d.PathInContainer, permissions: d.CgroupPermissions }),
    ),
    capabilities,
    privileged,
    hostNamespaces: hostNamespacesOf(host, joinedNamespaces),
    security: securityOf(host.SecurityOpt ?? [], inspect.AppArmorProfile ?? '', privileged, status, capabilities.configured),
    user: inspect.Config.User ?? '',
    resources: resourcesOf(host),
    restartPolicy: {
      // Containers created through the API without a policy report an empty name: same as `no`.
      name: host.RestartPolicy?.Name || 'no',
      maximumRetryCount: host.RestartPolicy?.MaximumRetryCount ?? 0,
    },
    mountLabel: inspect.MountLabel ?? '',
    processLabel: inspect.ProcessLabel ?? '',
    execs: input.execs.map((e) => ({
      id: e.ID,
      privileged: e.ProcessConfig.privileged === true,
      command: [e.ProcessConfig.entrypoint, ...(e.ProcessConfig.arguments ?? [])],
      user: e.ProcessConfig.user ?? '',
      running: e.Running,
      uids: statusOf(input.execStatus?.get(e.ID))?.uids ?? null,
    })),
    deviceCgroupRules: privileged ? [] : [...(host.DeviceCgroupRules ?? [])],
    systemPaths: systemPathsOf(host, privileged),
    joinedNamespaces,
    processUids: status?.uids ?? null,
    execHiddenByLabel: input.execHiddenByLabel,
    processes: input.processes.flatMap(({ pid, status }) => processOf(pid, status) ?? []),
    processesUnread: input.processesUnread,
    rootFilesystem: rootFilesystemOf(host, input.mountTable ?? null),
    cgroupParent: host.CgroupParent ?? '',
    ulimits: (host.Ulimits ?? []).map((u) => ({ name: u.Name ?? '', soft: u.Soft ?? 0, hard: u.Hard ?? 0 })),
    healthcheck: healthcheckOf(inspect.Config, input.image),
    mountPropagation: mountPropagationOf(inspect.Mounts, input.mountTable ?? null),
  };
}

/** The kernel's word on `/` (per-mount `ro`, which runc sets for `--read-only`) while the table can be read. */
function rootFilesystemOf(host: ContainerInspect['HostConfig'], table: readonly MountEntry[] | null): ContainerFacts['rootFilesystem'] {
  const root = table && entryAt(table, '/');
  if (root) return { readOnly: root.options.includes('ro'), judgedOn: 'mount table' };
  return { readOnly: host.ReadonlyRootfs === true, judgedOn: 'configuration' };
}

/** moby's getProbe: no test, or `NONE`, is no healthcheck; an unknown type too (dockerd runs none). */
function healthcheckTest(check: Healthcheck | null | undefined): readonly string[] | undefined {
  const test = check?.Test ?? [];
  return test.length === 0 ? undefined : test;
}

/**
 * The container's test, else the image's (dockerd merges the image's into the container's at create;
 * the gate's create request does not have it merged). The exec argv as moby's health.go builds it.
 */
function healthcheckOf(config: ContainerInspect['Config'], image: FactsInput['image']): HealthcheckFacts {
  const imageTest = healthcheckTest(image?.Config?.Healthcheck);
  const test = healthcheckTest(config.Healthcheck) ?? imageTest ?? [];
  const shell = config.Shell && config.Shell.length > 0 ? config.Shell : ['/bin/sh', '-c'];
  const [kind, ...rest] = test;
  const command = kind === 'CMD' ? rest : kind === 'CMD-SHELL' ? [...shell, ...rest] : [];
  return {
    command: command.length > 0 ? command : null,
    disabled: kind === 'NONE',
    image: image === null ? null : imageTest !== undefined && imageTest[0] !== 'NONE',
  };
}

const PROPAGATIONS = ['shared', 'rshared', 'slave', 'rslave', 'private', 'rprivate'];

/** Bind and volume mounts: `Propagation` as inspect reports it (the `-v` mode's for a gate request), and the kernel's `shared:N`. */
function mountPropagationOf(mounts: ContainerInspect['Mounts'], table: readonly MountEntry[] | null): MountPropagation[] {
  return (mounts ?? [])
    .filter((m) => HOST_PATH_TYPES.has(m.Type))
    .map((m) => ({
      destination: m.Destination,
      configured: m.Propagation || (m.Mode.split(',').find((option) => PROPAGATIONS.includes(option)) ?? ''),
      shared: table === null ? null : (entryAt(table, m.Destination)?.shared ?? false),
    }));
}

/**
 * dockerd fills both lists with its defaults at create when they are not given (null only on
 * containers older than that, which then get the defaults too); `systempaths=unconfined` or the API
 * may set them empty or short. A privileged container gets none.
 */
function systemPathsOf(host: ContainerInspect['HostConfig'], privileged: boolean): ContainerFacts['systemPaths'] {
  if (privileged) return { masked: [], readOnly: [] };
  return { masked: [...(host.MaskedPaths ?? DOCKER_MASKED_PATHS)], readOnly: [...(host.ReadonlyPaths ?? DOCKER_READONLY_PATHS)] };
}

/** A null-prototype copy: label keys are untrusted, and `labels['constructor']` must not find Object's. */
function labelsOf(labels: Readonly<Record<string, string>> | null | undefined): Record<string, string> {
  const copy: Record<string, string> = Object.create(null);
  for (const [key, value] of Object.entries(labels ?? {})) if (typeof value === 'string') copy[key] = value;
  return copy;
}

const PROTOCOLS: ReadonlySet<string> = new Set<Protocol>(['tcp', 'udp', 'sctp']);

function publishedPorts(ports: ContainerInspect['NetworkSettings']['Ports']): PublishedPort[] {
  const result: PublishedPort[] = [];
  const seen = new Set<string>();
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    const [portText = '', proto = ''] = key.split('/');
    const containerPort = portNumber(portText);
    if (!bindings || containerPort === undefined || !PROTOCOLS.has(proto)) continue;
    for (const binding of bindings) {
      const hostPort = portNumber(binding.HostPort);
      if (hostPort === undefined) continue;
      // Older dockerd reports an all-addresses binding as '' rather than one `0.0.0.0` and one `::` entry.
      for (const hostIp of binding.HostIp === '' ? ['0.0.0.0', '::'] : [binding.HostIp]) {
        const id = `${proto} ${hostIp} ${hostPort} ${containerPort}`;
        if (seen.has(id)) continue;
        seen.add(id);
        result.push({ proto: proto as Protocol, hostIp, hostPort, containerPort });
      }
    }
  }
  return result;
}

function portNumber(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function networksOf(networks: ContainerInspect['NetworkSettings']['Networks']): NetworkAttachment[] {
  return Object.entries(networks ?? {}).map(([name, n]) => ({
    name,
    networkId: n.NetworkID,
    ipv4: n.IPAddress,
    ipv6: n.GlobalIPv6Address,
    mac: n.MacAddress,
  }));
}

const MOUNT_TYPES: ReadonlySet<string> = new Set<MountType>(['bind', 'volume', 'tmpfs', 'npipe', 'cluster']);
/** Only these have a host path behind `Source`. */
const HOST_PATH_TYPES: ReadonlySet<string> = new Set<MountType>(['bind', 'volume']);

function mountsOf(mounts: ContainerInspect['Mounts'], realpath: (path: string) => string, views: ReadonlyMap<string, MountView> | undefined): MountFacts[] {
  // Types this model does not know (e.g. `image` mounts of newer engines) carry no host path; skip them.
  return (mounts ?? [])
    .filter((m) => MOUNT_TYPES.has(m.Type))
    .map((m) => {
      const hostPath = HOST_PATH_TYPES.has(m.Type) && m.Source !== '';
      const realSource = hostPath ? realpath(m.Source) : m.Source;
      const view = hostPath ? views?.get(m.Destination) : undefined;
      return {
        type: m.Type as MountType,
        source: m.Source,
        realSource,
        destination: m.Destination,
        rw: m.RW,
        mode: m.Mode,
        name: m.Name ?? '',
        driver: m.Driver ?? '',
        hostPaths: view?.hostPaths ?? (hostPath ? [realSource] : []),
        backing: view?.backing ?? null,
        device: view?.device ?? '',
        unresolved: view?.unresolved ?? null,
      };
    });
}

/** The lines of `/proc/<pid>/status` that facts use. */
/** What dockwarden reads of one `/proc/<pid>/status`: one parser for the init process and every other. */
interface ProcStatus {
  /** The process name (may hold spaces; the kernel escapes newlines in it). */
  readonly name: string;
  readonly capEff: readonly Capability[] | null;
  readonly capBnd: readonly Capability[] | null;
  /** `Seccomp:` 0 disabled, 1 strict, 2 filter. */
  readonly seccompMode: number | null;
  readonly noNewPrivs: boolean | null;
  readonly uids: ProcessUids | null;
}


const isCapabilityMask = (hex: string | undefined): hex is string => hex !== undefined && /^[0-9a-fA-F]{1,16}$/.test(hex);

/** A process's name and capability sets; null when its status lacks them. */
function processOf(pid: number, text: string): ProcessFacts | null {
  const status = parseProcStatus(text);
  if (status.capEff === null || status.capBnd === null) return null;
  return { pid, comm: status.name, effective: status.capEff, bounding: status.capBnd };
}

function statusOf(text: string | undefined): ProcStatus | null {
  return text === undefined ? null : parseProcStatus(text);
}

/**
 * What follows `name:` on the first line of `/proc/<pid>/status` that starts so, to the line's end; undefined
 * when none does. Found with indexOf, not a split of every line nor a regular expression per field: each
 * process of each container is parsed at every sync.
 */
function statusLine(text: string, name: string): string | undefined {
  const key = `${name}:`;
  let at = 0;
  if (!text.startsWith(key)) {
    const newline = text.indexOf(`\n${key}`);
    if (newline === -1) return undefined;
    at = newline + 1;
  }
  const end = text.indexOf('\n', at);
  return text.slice(at + key.length, end === -1 ? undefined : end);
}

/** The last status parsed: a sync reads its init's status for the container and again as one of its processes. */
let lastParsed: { readonly text: string; readonly status: ProcStatus } | null = null;

function parseProcStatus(text: string): ProcStatus {
  if (lastParsed?.text !== text) lastParsed = { text, status: parseStatusText(text) };
  return lastParsed.status;
}

function parseStatusText(text: string): ProcStatus {
  // A value of a single word (blanks around it allowed), else none.
  const field = (name: string) => /^\s*(\S+)\s*$/.exec(statusLine(text, name) ?? '')?.[1];
  const mask = (name: string) => {
    const hex = field(name);
    return isCapabilityMask(hex) ? decodeCapabilityMask(hex) : null;
  };
  const seccomp = field('Seccomp');
  const noNewPrivs = field('NoNewPrivs');
  // `Uid:\treal\teffective\tsaved\tfilesystem`, as the host sees them.
  const uids = /^\s+(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})\s+(\d{1,10})\s*$/.exec(statusLine(text, 'Uid') ?? '')?.slice(1).map(Number);
  const name = statusLine(text, 'Name');
  return {
    name: name?.startsWith('\t') ? name.slice(1) : '',
    capEff: mask('CapEff'),
    capBnd: mask('CapBnd'),
    seccompMode: seccomp !== undefined && /^[0-2]$/.test(seccomp) ? Number(seccomp) : null,
    noNewPrivs: noNewPrivs === '0' || noNewPrivs === '1' ? noNewPrivs === '1' : null,
    uids: uids ? { real: uids[0]!, effective: uids[1]!, saved: uids[2]!, filesystem: uids[3]! } : null,
  };
}

function capabilitiesOf(capAdd: readonly string[], capDrop: readonly string[], privileged: boolean, status: ProcStatus | null): CapabilityFacts {
  // Names dockerd does not know would have made it refuse the container: they are ignored.
  const normalised = (names: readonly string[]) => [...new Set(names.map(normaliseCapability).filter((c) => c !== undefined))];
  return {
    added: normalised(capAdd),
    dropped: normalised(capDrop),
    configured: configuredCapabilities(capAdd, capDrop, privileged),
    effective: status?.capEff ?? null,
  };
}

/** A joined namespace whose end could not be found counts as the host's: fail-safe. */
function hostNamespacesOf(host: ContainerInspect['HostConfig'], joined: readonly NamespaceJoin[]): HostNamespaces {
  const viaJoin = (namespace: NamespaceJoin['namespace']) => joined.some((j) => j.namespace === namespace && j.host !== false);
  return {
    pid: host.PidMode === 'host' || viaJoin('pid'),
    net: host.NetworkMode === 'host' || viaJoin('net'),
    ipc: host.IpcMode === 'host' || viaJoin('ipc'),
    uts: host.UTSMode === 'host',
    userns: host.UsernsMode === 'host',
    // dockerd's default is `host` on cgroup v1 and `private` on v2.
    cgroup: host.CgroupnsMode === 'host',
  };
}

/** dockerd's `--security-opt` parsing: `key=value`, or the deprecated `key:value`; the last one wins. */
function securityOf(
  options: readonly string[],
  appArmorProfile: string,
  privileged: boolean,
  status: ProcStatus | null,
  capabilities: readonly Capability[],
): SecurityOptions {
  let seccompProfile: string | undefined;
  let noNewPrivileges = false;
  const labelOptions: string[] = [];
  for (const option of options) {
    if (option === 'no-new-privileges') noNewPrivileges = true;
    else if (option === 'disable') labelOptions.push('disable');
    else {
      const separator = option.includes('=') ? '=' : ':';
      const at = option.indexOf(separator);
      if (at === -1) continue;
      const key = option.slice(0, at);
      const value = option.slice(at + 1);
      if (key === 'seccomp') seccompProfile = value;
      else if (key === 'label') labelOptions.push(value);
      else if (key === 'no-new-privileges') noNewPrivileges = parseGoBool(value) ?? noNewPrivileges;
    }
  }
  const seccomp = seccompOf(seccompProfile, privileged, status);
  return {
    seccomp,
    apparmor: appArmorProfile,
    // The daemon-wide `--no-new-privileges` default is invisible in inspect but not in procfs.
    noNewPrivileges: noNewPrivileges || status?.noNewPrivs === true,
    labelOptions,
    seccompProfile: seccomp === 'custom' ? readSeccompProfile(seccompProfile ?? '', capabilities) : null,
  };
}

function seccompOf(profile: string | undefined, privileged: boolean, status: ProcStatus | null): SecurityOptions['seccomp'] {
  // dockerd applies no seccomp profile at all to a privileged container, whatever was asked for.
  if (privileged || profile === 'unconfined') return 'unconfined';
  // The kernel's word wins: no filter on the init process (daemon without seccomp, daemon-wide
  // `--seccomp-profile unconfined`) means unconfined, whatever the container's options say.
  if (status?.seccompMode === 0) return 'unconfined';
  return profile === undefined || profile === '' || profile === 'builtin' ? 'default' : 'custom';
}

/** Go's strconv.ParseBool, which dockerd uses for `no-new-privileges=<bool>`. */
function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

function resourcesOf(host: ContainerInspect['HostConfig']): ResourceLimits {
  const quota = host.CpuQuota ?? 0;
  // The kernel's CFS period defaults to 100 ms when only a quota is set.
  const period = host.CpuPeriod || 100_000;
  return {
    memory: host.Memory ?? 0,
    pidsLimit: host.PidsLimit ?? 0,
    cpus: host.NanoCpus ? host.NanoCpus / 1e9 : quota > 0 ? quota / period : 0,
    cpuShares: host.CpuShares ?? 0,
  };
}
