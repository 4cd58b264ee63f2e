import Docker from 'dockerode';
import type { ContainerFacts } from '../../domain/facts.js';
import { readFacts, type ImageCache } from './read-facts.js';

/**
 * The slice of the Docker engine dockwarden uses. The app layer depends on this interface only, so
 * it can be handed a client for any socket (tests use a private dockerd).
 */
export interface DockerEngine {
  ping(): Promise<void>;
  /** Ids of all containers, running or not. */
  listContainerIds(): Promise<string[]>;
  /** Normalised facts, or null when the container no longer exists. */
  readFacts(id: string): Promise<ContainerFacts | null>;
  /** Bridge networks with their host interface names: where published ports lead. */
  listBridges(): Promise<BridgeNetwork[]>;
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
}

export function connectEngine({ socketPath, timeoutMs }: EngineOptions): DockerEngine {
  // Two clients: API calls time out; the event stream is long-lived and must not.
  const api = new Docker({ socketPath, timeout: timeoutMs });
  const events = new Docker({ socketPath });
  const images: ImageCache = new Map();
  return {
    async ping() {
      await api.ping();
    },
    async listContainerIds() {
      const list = await api.listContainers({ all: true });
      return list.map((c) => c.Id);
    },
    readFacts: (id) => readFacts(api, id, images),
    async listBridges() {
      const networks = await api.listNetworks({ filters: { driver: ['bridge'] } });
      return networks.map((n) => ({
        id: n.Id,
        name: n.Name,
        interfaceName: n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`,
      }));
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
