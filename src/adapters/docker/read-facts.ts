import { readFile, realpath } from 'node:fs/promises';
import type { ContainerFacts } from '../../domain/facts.js';
import { pathProbe, type PathProbe } from '../fs/path-probe.js';
import { readContainerMountTable, readHostMountTable } from '../proc/mount-table.js';
import { toContainerFacts, type ContainerInspect, type ExecInspect, type FactsInput } from './facts.js';
import { readMountViews } from './mount-sources.js';

/** The dockerode calls facts need; a `Dockerode` instance is one. */
export interface InspectClient {
  getContainer(id: string): { inspect(): Promise<ContainerInspect> };
  getExec(id: string): { inspect(): Promise<ExecInspect> };
  getImage(id: string): { inspect(): Promise<{ readonly RepoTags?: string[] | null; readonly RepoDigests?: string[] | null }> };
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

const defaultProbe = pathProbe();

/**
 * Inspects a container and gathers what `toContainerFacts` needs; null when it no longer exists.
 * `execId` names an exec an event announced: a short `docker exec` has often left `ExecIDs` by the
 * time we look, but dockerd still answers for it.
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
  const running = inspect.State.Running && inspect.State.Pid > 0;
  const execIds = new Set([...(inspect.ExecIDs ?? []), ...(execId === undefined ? [] : [execId])]);
  const [image, procStatus, mountViews, execs] = await Promise.all([
    imageRefs(docker, inspect.Image, images, options),
    running ? readInitStatus(inspect.State.Pid, inspect.Id) : null,
    (running ? mountTables(inspect.State.Pid, inspect.Id) : Promise.resolve(null)).then((tables) =>
      readMountViews({
        inspect,
        volumeOptions: async (name) => (await orNullIfMissing(docker.getVolume(name).inspect()))?.Options ?? null,
        probe: options.probe ?? defaultProbe,
        tables,
        sockets: options.sockets?.() ?? [],
      }),
    ),
    Promise.all([...execIds].map((exec) => orNullIfMissing(docker.getExec(exec).inspect()))),
  ]);
  const realSources = new Map((inspect.Mounts ?? []).flatMap((m) => { const view = mountViews.get(m.Destination); return view ? [[m.Source, view.realSource] as const] : []; }));
  return toContainerFacts(inspect, {
    image,
    procStatus,
    mountViews,
    realpath: (path) => realSources.get(path) ?? path,
    // An exec id from an event is only trusted for the container it belongs to.
    execs: execs.filter((e): e is ExecInspect => e?.ContainerID === inspect.Id),
  });
}

/** The container's mount table and the host's, or null when either cannot be read. */
async function mountTables(pid: number, containerId: string) {
  const [container, host] = await Promise.all([readContainerMountTable(pid, containerId), readHostMountTable()]);
  return container && host && { container, host };
}

async function imageRefs(docker: InspectClient, imageId: string, images: ImageCache, options: ReadFactsOptions): Promise<ImageRefs> {
  const { imageTtlMs = 30_000, imageCacheLimit = 1_000, now = Date.now } = options;
  const cached = images.get(imageId);
  if (cached && now() - cached.fetchedAt < imageTtlMs) return cached.refs;
  const inspected = await orNullIfMissing(docker.getImage(imageId).inspect());
  const refs: ImageRefs = inspected && { RepoTags: inspected.RepoTags ?? [], RepoDigests: inspected.RepoDigests ?? [] };
  images.delete(imageId); // re-inserted last, so iteration order is oldest first
  images.set(imageId, { refs, fetchedAt: now() });
  for (const oldest of images.keys()) {
    if (images.size <= imageCacheLimit) break;
    images.delete(oldest);
  }
  return refs;
}

/**
 * `/proc/<pid>/status` of the container's init process, or null when it is gone. The pid may have
 * been reused since the inspect: the cgroup file, read after the status, must name the container.
 */
async function readInitStatus(pid: number, containerId: string): Promise<string | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const cgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    return cgroup.includes(containerId) ? status : null;
  } catch {
    return null;
  }
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

async function orNullIfMissing<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (error) {
    if ((error as { statusCode?: unknown }).statusCode === 404) return null;
    throw error;
  }
}
