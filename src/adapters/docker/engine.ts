import type { ContainerFacts } from '../../domain/facts.js';
import type { DockerBridge } from '../../domain/firewall/bridge-options.js';
import type { CreateLookups, VolumeInfo } from '../../domain/gate/create-inspect.js';
import { pathProbe } from '../fs/path-probe.js';
import { EngineClient } from './engine-client.js';
import type { ContainerInspect } from './facts.js';
import { isPodman, podmanBridgeNames } from './podman.js';
import { factsFromInspect, orNullIfMissing, readFacts, rememberImage, resolveSources, type ImageCache, type ImageInspect } from './read-facts.js';

/** Docker's data root is asked again after this long (it changes only with a restart of dockerd). */
const DATA_ROOT_TTL_MS = 60_000;

/**
 * The slice of the Docker engine dockwarden uses. The app layer depends on this interface only, so
 * it can be handed a client for any socket (tests use a private dockerd).
 */
export interface DockerEngine {
  ping(): Promise<void>;
  /** Ids of all containers, running or not, newest first; `limit`: the newest that many. */
  listContainerIds(limit?: number): Promise<string[]>;
  /** Normalised facts, or null when the container no longer exists; `execId`: an exec an event named. */
  readFacts(id: string, execId?: string): Promise<ContainerFacts | null>;
  /** Sets the restart policy to `no`, so a container dockwarden ends stays ended. */
  disableRestart(id: string): Promise<void>;
  /**
   * SIGTERM, then SIGKILL unless it has exited within `graceSeconds`. The container's own stop
   * signal and timeout are not used: they are its author's, and `--stop-signal SIGWINCH
   * --stop-timeout 86400` would keep it running through a `docker stop`.
   */
  stop(id: string, graceSeconds: number): Promise<void>;
  kill(id: string): Promise<void>;
  /** Bridge networks with their host interface names: where published ports lead. */
  listBridges(): Promise<BridgeNetwork[]>;
  /** `DockerRootDir`, with symlinks resolved. */
  dataRoot(): Promise<string>;
  /** The host paths (symlinks resolved) each running container mounts, by container id. */
  runningMounts(): Promise<Map<string, string[]>>;
  /** The container, network and image event stream from `sinceNano` (replay is best effort: dockerd keeps only 256 events). */
  subscribe(sinceNano: bigint | null): Promise<NodeJS.ReadableStream>;
  /** The gate's look-ups: null when the engine has no such thing. */
  inspectImage(reference: string): Promise<CreateLookups['image']>;
  inspectVolume(name: string): Promise<VolumeInfo | null>;
  inspectContainer(id: string): Promise<ContainerInspect | null>;
  /** Facts of a container from an inspect, real or the one a create request would produce. */
  factsOf(inspect: ContainerInspect): Promise<ContainerFacts>;
}

export interface BridgeNetwork extends DockerBridge {
  readonly id: string;
  readonly name: string;
  /** The Linux bridge: `com.docker.network.bridge.name`, else dockerd's `br-<id12>`. */
  readonly interfaceName: string;
}

export interface EngineOptions {
  readonly socketPath: string;
  readonly timeoutMs: number;
  /** Engine socket paths a mounted file is recognised as by identity; default none. */
  readonly sockets?: () => readonly string[];
}

export function connectEngine({ socketPath, timeoutMs, sockets }: EngineOptions): DockerEngine {
  // Two clients: API calls time out; the event stream is long-lived and must not.
  const api = new EngineClient(socketPath, timeoutMs);
  // Waits for a container to exit last as long as a stop's grace period: each is bounded by its own abort signal.
  const waits = new EngineClient(socketPath, null);
  const images: ImageCache = new Map();
  const probe = pathProbe();
  const factsOptions = { probe, ...(sockets && { sockets }) };
  // Podman answers on the same API with differences the adapter evens out (podman.ts); told apart again
  // at every ping (each (re)connection), since another engine may come up on the socket.
  let podman: Promise<boolean> | null = null;
  const engineIsPodman = (): Promise<boolean> => (podman ??= isPodman(api).catch((error: unknown) => { podman = null; throw error; }));
  return {
    async ping() {
      await api.ping();
      podman = null;
      await engineIsPodman();
    },
    async listContainerIds(limit) {
      const list = await api.listContainers(true, limit);
      return list.map((c) => c.Id);
    },
    readFacts: (id, execId) => readFacts(api, id, images, factsOptions, execId),
    factsOf: (inspect) => factsFromInspect(api, inspect, images, factsOptions),
    async inspectImage(reference) {
      const image = await orNullIfMissing(api.getImage(reference).inspect<NonNullable<CreateLookups['image']> & ImageInspect>());
      if (image) rememberImage(images, image.Id, image, factsOptions);
      return image;
    },
    inspectVolume: (name) => orNullIfMissing(api.getVolume(name).inspect<VolumeInfo>()),
    inspectContainer: (id) => orNullIfMissing(api.getContainer(id).inspect()),
    async disableRestart(id) {
      await api.getContainer(id).update({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
    },
    // Not running (304 / 409) or gone (404) is what stop and kill are for: not a failure.
    async stop(id, graceSeconds) {
      await unlessEnded(api.getContainer(id).kill('SIGTERM'));
      if (await exitsWithin(waits, id, graceSeconds * 1000)) return;
      await unlessEnded(api.getContainer(id).kill('SIGKILL'));
    },
    kill: (id) => unlessEnded(api.getContainer(id).kill()),
    async listBridges() {
      const networks = await api.listNetworks({ driver: ['bridge'] });
      const podmanBridges = (await engineIsPodman()) ? await podmanBridgeNames(api) : null;
      return networks.map((n) => ({
        id: n.Id,
        name: n.Name,
        interfaceName: podmanBridges?.get(n.Id) ?? n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`,
        // Docker 27.1 and later; older engines keep the option without acting on it (the admin said routed).
        routed4: n.Options?.['com.docker.network.bridge.gateway_mode_ipv4'] === 'routed',
        routed6: n.Options?.['com.docker.network.bridge.gateway_mode_ipv6'] === 'routed',
      }));
    },
    // Every create and every relabel plan names it; it changes only with a restart of dockerd.
    dataRoot: remembered(DATA_ROOT_TTL_MS, async () => {
      const info = await api.info();
      return (await resolveSources([info.DockerRootDir])).get(info.DockerRootDir)!;
    }),
    async runningMounts() {
      const list = await api.listContainers(false);
      const sources = list.map((c) => (c.Mounts ?? []).map((m) => m.Source).filter((s) => s.startsWith('/')));
      // Container-named paths: resolved through the probe, so a hung mount costs a deadline, not the daemon.
      const unique = [...new Set(sources.flat())];
      const resolved = await Promise.all(unique.map(async (s) => { const r = await probe.realpath(s); return r.ok ? r.value : s; }));
      const real = new Map(unique.map((s, i) => [s, resolved[i]!]));
      return new Map(list.map((c, i) => [c.Id, sources[i]!.map((s) => real.get(s) ?? s)]));
    },
    async subscribe(sinceNano) {
      return api.events({
        // Networks too: a new bridge or a container joining one changes what the firewall must cover.
        // Images: a tag, pull or delete may move a name the gate's image look-ups keep.
        filters: { type: ['container', 'network', 'image'] },
        // Fractional seconds: dockerd parses `since` as `seconds[.fraction]`.
        ...(sinceNano === null ? {} : { since: Number(sinceNano) / 1e9 }),
      });
    },
  };
}

/** Whether the container is (or becomes) not running within `ms`; false also when that cannot be told. */
async function exitsWithin(engine: EngineClient, id: string, ms: number): Promise<boolean> {
  try {
    await engine.getContainer(id).wait(AbortSignal.timeout(ms));
    return true;
  } catch (error) {
    return (error as { statusCode?: unknown }).statusCode === 404;
  }
}

async function unlessEnded(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (status !== 304 && status !== 404 && status !== 409) throw error;
  }
}

/** `read()`'s answer, asked again once it is `ttlMs` old; a failed read is not kept. */
function remembered<T>(ttlMs: number, read: () => Promise<T>): () => Promise<T> {
  let cached: { readonly value: Promise<T>; readonly at: number } | null = null;
  return () => {
    if (cached === null || Date.now() - cached.at >= ttlMs) {
      const value = read();
      cached = { value, at: Date.now() };
      value.catch(() => (cached = null));
    }
    return cached.value;
  };
}
