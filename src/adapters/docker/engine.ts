import Docker from 'dockerode';
import type { ContainerFacts } from '../../domain/facts.js';
import { pathProbe } from '../fs/path-probe.js';
import { readFacts, resolveSources, type ImageCache } from './read-facts.js';

/**
 * The slice of the Docker engine dockwarden uses. The app layer depends on this interface only, so
 * it can be handed a client for any socket (tests use a private dockerd).
 */
export interface DockerEngine {
  ping(): Promise<void>;
  /** Ids of all containers, running or not. */
  listContainerIds(): Promise<string[]>;
  /** Normalised facts, or null when the container no longer exists; `execId`: an exec an event named. */
  readFacts(id: string, execId?: string): Promise<ContainerFacts | null>;
  /** Sets the restart policy to `no`, so a container dockwarden ends stays ended. */
  disableRestart(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after the container's stop timeout. */
  stop(id: string): Promise<void>;
  kill(id: string): Promise<void>;
  /** Bridge networks with their host interface names: where published ports lead. */
  listBridges(): Promise<BridgeNetwork[]>;
  /** `DockerRootDir`, with symlinks resolved. */
  dataRoot(): Promise<string>;
  /** The host paths (symlinks resolved) each running container mounts, by container id. */
  runningMounts(): Promise<Map<string, string[]>>;
  /** The container event stream from `sinceNano` (replay is best effort: dockerd keeps only 256 events). */
  subscribe(sinceNano: bigint | null): Promise<NodeJS.ReadableStream>;
}

export interface BridgeNetwork {
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

/** The API waits out the stop timeout (default 10 s) before answering: allow for it beyond our own. */
const STOP_GRACE_MS = 15_000;

export function connectEngine({ socketPath, timeoutMs, sockets }: EngineOptions): DockerEngine {
  // Two clients: API calls time out; the event stream is long-lived and must not.
  const api = new Docker({ socketPath, timeout: timeoutMs });
  const events = new Docker({ socketPath });
  const stopper = new Docker({ socketPath, timeout: timeoutMs + STOP_GRACE_MS });
  const images: ImageCache = new Map();
  const probe = pathProbe();
  return {
    async ping() {
      await api.ping();
    },
    async listContainerIds() {
      const list = await api.listContainers({ all: true });
      return list.map((c) => c.Id);
    },
    readFacts: (id, execId) => readFacts(api, id, images, { probe, ...(sockets && { sockets }) }, execId),
    async disableRestart(id) {
      await api.getContainer(id).update({ RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
    },
    // Not running (304 / 409) or gone (404) is what stop and kill are for: not a failure.
    stop: (id) => unlessEnded(stopper.getContainer(id).stop()),
    kill: (id) => unlessEnded(api.getContainer(id).kill()),
    async listBridges() {
      const networks = await api.listNetworks({ filters: { driver: ['bridge'] } });
      return networks.map((n) => ({
        id: n.Id,
        name: n.Name,
        interfaceName: n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`,
      }));
    },
    async dataRoot() {
      const info = (await api.info()) as { DockerRootDir: string };
      return (await resolveSources([info.DockerRootDir])).get(info.DockerRootDir)!;
    },
    async runningMounts() {
      const list = await api.listContainers();
      const sources = list.map((c) => (c.Mounts ?? []).map((m) => m.Source).filter((s) => s.startsWith('/')));
      // Container-named paths: resolved through the probe, so a hung mount costs a deadline, not the daemon.
      const unique = [...new Set(sources.flat())];
      const resolved = await Promise.all(unique.map(async (s) => { const r = await probe.realpath(s); return r.ok ? r.value : s; }));
      const real = new Map(unique.map((s, i) => [s, resolved[i]!]));
      return new Map(list.map((c, i) => [c.Id, sources[i]!.map((s) => real.get(s) ?? s)]));
    },
    async subscribe(sinceNano) {
      return events.getEvents({
        filters: { type: ['container'] },
        // Fractional seconds: dockerd parses `since` as `seconds[.fraction]`.
        ...(sinceNano === null ? {} : { since: Number(sinceNano) / 1e9 }),
      });
    },
  };
}

async function unlessEnded(request: Promise<unknown>): Promise<void> {
  try {
    await request;
  } catch (error) {
    const status = (error as { statusCode?: unknown }).statusCode;
    if (status !== 304 && status !== 404 && status !== 409) throw error;
  }
}
