import { readFile, readlink, realpath } from 'node:fs/promises';
import type { ContainerFacts, JoinableNamespace, NamespaceJoin } from '../../domain/facts.js';
import type { MountEntry } from '../../domain/mount-map.js';
import { pathProbe, type PathProbe } from '../fs/path-probe.js';
import { readContainerMountTable, readHostMountTable } from '../proc/mount-table.js';
import { readContainerProcesses, readStatusInContainer } from './container-processes.js';
import { toContainerFacts, type ContainerInspect, type ExecInspect, type FactsInput, type Healthcheck } from './facts.js';
import { readMountViews } from './mount-sources.js';

/** The engine calls facts need; an `EngineClient` is one (and a dockerode instance, which tests use). */
export interface InspectClient {
  getContainer(id: string): { inspect(): Promise<ContainerInspect> };
  getExec(id: string): { inspect(): Promise<ExecInspect> };
  getImage(id: string): {
    inspect(): Promise<{ readonly RepoTags?: string[] | null; readonly RepoDigests?: string[] | null; readonly Config?: { readonly Healthcheck?: Healthcheck | null } | null }>;
  };
  getVolume(name: string): { inspect(): Promise<{ readonly Options?: Readonly<Record<string, string>> | null }> };
}

type ImageRefs = FactsInput['image'];

/** Image inspect results by image id, shared by all reads of one engine client. */
export type ImageCache = Map<string, { readonly refs: ImageRefs; readonly fetchedAt: number }>;

export interface ReadFactsOptions {
  /**
   * How long a cached image inspect is used. Image content is immutable, but its RepoTags and
   * RepoDigests are not (`docker tag`, pull, push, a tag moving to a newer image): keep this short.
   */
  readonly imageTtlMs?: number;
  /** Cache entries kept at most; the oldest go first. */
  readonly imageCacheLimit?: number;
  readonly now?: () => number;
  /** Lookups on mount sources (deadline, bounded); default: one of its own. */
  readonly probe?: PathProbe;
  /** Engine socket paths a mounted file is recognised as by identity (device and inode). */
  readonly sockets?: () => readonly string[];
}

/** The exec event attribute naming the exec; a container label of that name replaces it in every event. */
const EXEC_ID_ATTRIBUTE = 'execID';
const defaultProbe = pathProbe();

/**
 * Inspects a container and gathers what `toContainerFacts` needs; null when it no longer exists.
 * `execId` is the exec id an exec event carried: a short `docker exec` has often left `ExecIDs` by
 * the time we look, but dockerd still answers for it. It is used only when no label of the
 * container could have put it there (labels are fixed at creation, and inspect shows them all).
 */
export async function readFacts(
  docker: InspectClient,
  id: string,
  images: ImageCache,
  options: ReadFactsOptions = {},
  execId?: string,
): Promise<ContainerFacts | null> {
  const inspect = await orNullIfMissing(docker.getContainer(id).inspect());
  if (inspect === null) return null;
  return factsFromInspect(docker, inspect, images, options, execId);
}

/**
 * Facts of a container from its inspect: everything else it needs (image, processes, mount
 * sources, execs) read beside it. The gate hands it the inspect a create request would produce.
 */
export async function factsFromInspect(
  docker: InspectClient,
  inspect: ContainerInspect,
  images: ImageCache,
  options: ReadFactsOptions = {},
  execId?: string,
): Promise<ContainerFacts> {
  const running = inspect.State.Running && inspect.State.Pid > 0;
  // dockerd copies the container's labels over its own event attributes: with an `execID` label,
  // the event's exec id is the label's, and which exec ran cannot be told from the event.
  const execHiddenByLabel = execId !== undefined && Object.hasOwn(inspect.Config.Labels ?? {}, EXEC_ID_ATTRIBUTE);
  const execIds = new Set([...(inspect.ExecIDs ?? []), ...(execId === undefined || execHiddenByLabel ? [] : [execId])]);
  // A volume a create request would make has no inspect yet: the gate carries its driver options on the mount.
  const requestedOptions = new Map((inspect.Mounts ?? []).flatMap((m) => (m.Name && m.Options ? [[m.Name, m.Options] as const] : [])));
  const mountTable = running ? readContainerMountTable(inspect.State.Pid, inspect.Id, mountPointsJudged(inspect)) : Promise.resolve(null);
  const [image, processes, mountViews, execs, joinedNamespaces, containerTable] = await Promise.all([
    // A create request for an image dockerd does not have names none (dockerd answers 404 to it).
    inspect.Image === '' ? null : imageRefs(docker, inspect.Image, images, options),
    // The init process is one of the cgroup's: its status is read once, there (apart, only when the cgroup could not be listed).
    running ? readContainerProcesses(inspect.State.Pid, inspect.Id).then(async (listed) => ({ listed, init: listed.processes.find((p) => p.pid === inspect.State.Pid)?.status ?? (await readStatusInContainer(inspect.State.Pid, inspect.Id)) })) : null,
    readMountViews({
      inspect,
      volumeOptions: async (name) => requestedOptions.get(name) ?? (await orNullIfMissing(docker.getVolume(name).inspect()))?.Options ?? null,
      probe: options.probe ?? defaultProbe,
      tables: (fresh) => withHostTable(mountTable, fresh ? undefined : startedAt(inspect)),
      sockets: options.sockets?.() ?? [],
    }),
    Promise.all([...execIds].map((exec) => orNullIfMissing(docker.getExec(exec).inspect()))),
    followJoins(docker, inspect, running ? inspect.State.Pid : 0),
    mountTable,
  ]);
  const inspected = execs.filter((e): e is ExecInspect => e?.ContainerID === inspect.Id);
  const execStatus = await readExecStatus(inspected, inspect.Id);
  const realSources = new Map((inspect.Mounts ?? []).flatMap((m) => { const view = mountViews.get(m.Destination); return view ? [[m.Source, view.realSource] as const] : []; }));
  return toContainerFacts(inspect, {
    image,
    procStatus: processes?.init ?? null,
    mountViews,
    realpath: (path) => realSources.get(path) ?? path,
    // An exec id from an event is only trusted for the container it belongs to.
    execs: inspected,
    execStatus,
    joinedNamespaces,
    execHiddenByLabel,
    processes: processes?.listed.processes ?? [],
    processesUnread: processes?.listed.unread ?? 0,
    mountTable: containerTable,
  });
}

/** Where the facts look in a container's mount table: its root and each configured mount's destination. */
export function mountPointsJudged(inspect: Pick<ContainerInspect, 'Mounts'>): Set<string> {
  return new Set(['/', ...(inspect.Mounts ?? []).map((m) => m.Destination)]);
}

/** Running execs' status files: the user an exec really runs as (a name the image maps to uid 0 included). */
async function readExecStatus(execs: readonly ExecInspect[], containerId: string): Promise<Map<string, string>> {
  const running = execs.filter((e) => e.Running && (e.Pid ?? 0) > 0);
  const statuses = await Promise.all(running.map((e) => readStatusInContainer(e.Pid!, containerId)));
  return new Map(running.flatMap((e, i) => (statuses[i] ? [[e.ID, statuses[i]] as const] : [])));
}

/**
 * The container's mount table and the host's, or null when either cannot be read (the host's is not
 * read without the container's: a create has none). The host's begun after `startedAfter`, or after this call.
 */
async function withHostTable(containerTable: Promise<MountEntry[] | null>, startedAfter: number | undefined) {
  const container = await containerTable;
  const host = container && (await readHostMountTable(startedAfter));
  return container && host && { container, host };
}

/** When dockerd says the container started (wall-clock ms); undefined when it says nothing usable. */
function startedAt(inspect: ContainerInspect): number | undefined {
  const at = Date.parse(inspect.State.StartedAt);
  return at > 0 ? at : undefined;
}

const JOIN_MODES: ReadonlyArray<readonly [JoinableNamespace, 'PidMode' | 'NetworkMode' | 'IpcMode']> = [
  ['pid', 'PidMode'],
  ['net', 'NetworkMode'],
  ['ipc', 'IpcMode'],
];
/** Containers followed at most per namespace: dockerd makes chains, never cycles, but inspect answers are not trusted. */
export const MAX_JOIN_CHAIN = 8;
/** A container name or id as dockerd accepts them; anything else is not looked up (it goes into a request path). */
const CONTAINER_REF = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/**
 * `--pid|--network|--ipc container:X` (X a name or id; UTS, user and cgroup namespaces cannot be
 * joined): X is inspected, and X's own mode followed, until a `host` or a private namespace. When the
 * chain breaks (X removed while this container runs on in its namespace, or too long), the process
 * itself answers: its namespace compared with the host's (pid 1's).
 */
async function followJoins(docker: InspectClient, inspect: ContainerInspect, pid: number): Promise<NamespaceJoin[]> {
  const seen = new Map<string, Promise<ContainerInspect | null>>();
  const lookup = (ref: string) => {
    if (!CONTAINER_REF.test(ref)) return Promise.resolve(null);
    if (!seen.has(ref)) seen.set(ref, orNullIfMissing(docker.getContainer(ref).inspect()));
    return seen.get(ref)!;
  };
  const joins: NamespaceJoin[] = [];
  for (const [namespace, field] of JOIN_MODES) {
    let mode = inspect.HostConfig[field] ?? '';
    if (!mode.startsWith('container:')) continue;
    const through: string[] = [];
    let host: boolean | null = null;
    while (through.length < MAX_JOIN_CHAIN) {
      const target = await lookup(mode.slice('container:'.length));
      if (target === null) {
        through.push(mode.slice('container:'.length));
        break;
      }
      through.push(target.Name.replace(/^\//, ''));
      mode = target.HostConfig[field] ?? '';
      if (!mode.startsWith('container:')) {
        host = mode === 'host';
        break;
      }
    }
    if (host !== null) joins.push({ namespace, through, host, judgedBy: 'inspect' });
    else {
      const seenByProcess = pid > 0 ? await isHostNamespace(pid, inspect.Id, namespace) : null;
      joins.push({ namespace, through, host: seenByProcess, judgedBy: seenByProcess === null ? 'none' : 'process' });
    }
  }
  return joins;
}

/**
 * Whether the container's init process is in the host's namespace; null when either link cannot be
 * read (it needs ptrace-read access) or the pid has been reused by then (its cgroup, read after the
 * link, must name the container).
 */
async function isHostNamespace(pid: number, containerId: string, namespace: JoinableNamespace): Promise<boolean | null> {
  try {
    const [own, host] = await Promise.all([readlink(`/proc/${pid}/ns/${namespace}`), readlink(`/proc/1/ns/${namespace}`)]);
    const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    return cgroup.includes(containerId) ? own === host : null;
  } catch {
    return null;
  }
}

async function imageRefs(docker: InspectClient, imageId: string, images: ImageCache, options: ReadFactsOptions): Promise<ImageRefs> {
  const { imageTtlMs = 30_000, now = Date.now } = options;
  const cached = images.get(imageId);
  if (cached && now() - cached.fetchedAt < imageTtlMs) return cached.refs;
  return rememberImage(images, imageId, await orNullIfMissing(docker.getImage(imageId).inspect()), options);
}

/** The fields of an image inspect the facts use. */
export interface ImageInspect {
  readonly RepoTags?: string[] | null;
  readonly RepoDigests?: string[] | null;
  readonly Config?: { readonly Healthcheck?: Healthcheck | null } | null;
}

/**
 * Keeps an image inspect made anyway (the gate inspects a create's image by its reference) for the
 * facts read right after, so a create costs one image inspect, not two.
 */
export function rememberImage(
  images: ImageCache,
  imageId: string,
  inspected: ImageInspect | null,
  options: ReadFactsOptions,
): ImageRefs {
  const { imageCacheLimit = 1_000, now = Date.now } = options;
  const refs: ImageRefs = inspected && {
    RepoTags: inspected.RepoTags ?? [],
    RepoDigests: inspected.RepoDigests ?? [],
    Config: { Healthcheck: inspected.Config?.Healthcheck ?? null },
  };
  images.delete(imageId); // re-inserted last, so iteration order is oldest first
  images.set(imageId, { refs, fetchedAt: now() });
  for (const oldest of images.keys()) {
    if (images.size <= imageCacheLimit) break;
    images.delete(oldest);
  }
  return refs;
}

/**
 * `paths` with their symlinks resolved, in order (each itself when it cannot be resolved). For paths
 * the admin names (relabel roots, Docker's data root); paths a container names go through the probe.
 */
export async function realpaths(paths: readonly string[]): Promise<string[]> {
  const real = await resolveSources(paths);
  return paths.map((path) => real.get(path) ?? path);
}

/** Each host path with its symlinks resolved (itself when it cannot be resolved). */
export async function resolveSources(sources: readonly string[]): Promise<Map<string, string>> {
  const unique = [...new Set(sources)];
  const resolved = await Promise.all(unique.map((source) => realpath(source).catch(() => source)));
  return new Map(unique.map((source, i) => [source, resolved[i] ?? source]));
}

export async function orNullIfMissing<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (error) {
    if ((error as { statusCode?: unknown }).statusCode === 404) return null;
    throw error;
  }
}
