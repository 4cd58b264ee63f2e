import { realpath } from 'node:fs/promises';
import type { ContainerFacts } from '../../domain/facts.js';
import { readContainerProcesses, readStatusInContainer } from './container-processes.js';
import { toContainerFacts, type ContainerInspect, type ExecInspect, type FactsInput } from './facts.js';

/** The dockerode calls facts need; a `Dockerode` instance is one. */
export interface InspectClient {
  getContainer(id: string): { inspect(): Promise<ContainerInspect> };
  getExec(id: string): { inspect(): Promise<ExecInspect> };
  getImage(id: string): { inspect(): Promise<{ readonly RepoTags?: string[] | null; readonly RepoDigests?: string[] | null }> };
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
}

/** The exec event attribute naming the exec; a container label of that name replaces it in every event. */
const EXEC_ID_ATTRIBUTE = 'execID';

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
  const [image, procStatus, processes, realSources, execs] = await Promise.all([
    // A create request for an image dockerd does not have names none (dockerd answers 404 to it).
    inspect.Image === '' ? null : imageRefs(docker, inspect.Image, images, options),
    running ? readStatusInContainer(inspect.State.Pid, inspect.Id) : null,
    running ? readContainerProcesses(inspect.State.Pid, inspect.Id) : { processes: [], unread: 0 },
    resolveSources((inspect.Mounts ?? []).map((m) => m.Source).filter((s) => s.startsWith('/'))),
    Promise.all([...execIds].map((exec) => orNullIfMissing(docker.getExec(exec).inspect()))),
  ]);
  return toContainerFacts(inspect, {
    image,
    procStatus,
    realpath: (path) => realSources.get(path) ?? path,
    // An exec id from an event is only trusted for the container it belongs to.
    execs: execs.filter((e): e is ExecInspect => e?.ContainerID === inspect.Id),
    execHiddenByLabel,
    processes: processes.processes,
    processesUnread: processes.unread,
  });
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

/** Real paths of mount sources; asynchronous, so a hung network mount cannot stall the event loop. */
/** `paths` with their symlinks resolved, in order (each itself when it cannot be resolved). */
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
