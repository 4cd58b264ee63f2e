/**
 * Podman's Docker-compatible API (`podman system service`, 4.3) where it differs from dockerd's in
 * what dockwarden reads; only the engine adapter knows Podman, the domain sees dockerd's shapes.
 * - bridges: the compatible network list names no interface (`Options` is empty, the default
 *   network is called `bridge`); Podman's own list has `network_interface` (`podman0`, `podman1`, …,
 *   not dockerd's `br-<id>`).
 * Read the same without help (test/integration/podman.test.ts): inspect's `CapAdd`/`CapDrop` (Podman
 * 4.3 reports them against Docker's defaults, whatever its own `default_capabilities` are),
 * `Privileged`, published ports (`HostIp` `""` for all addresses); events (`remove` where dockerd
 * says `destroy`, `exec` for `exec_start`: every action but the irrelevant ones makes the container
 * be read again). Podman sends no network events: a new network is seen at the next reconcile.
 */
import type { EngineClient } from './engine-client.js';

/** Podman's own API, at the oldest version Podman 4 serves. */
const LIBPOD = '/v4.0.0/libpod';

/** Whether the engine behind `api` is Podman (`/version` lists a component `Podman Engine`). */
export async function isPodman(api: EngineClient): Promise<boolean> {
  const version = await api.version();
  return (version.Components ?? []).some((c) => c.Name === 'Podman Engine');
}

/** The Linux bridge of each Podman network, by network id. */
export async function podmanBridgeNames(api: EngineClient): Promise<Map<string, string>> {
  const networks = (await api.get(`${LIBPOD}/networks/json`)) as ReadonlyArray<{ id?: unknown; network_interface?: unknown }> | null;
  return new Map((Array.isArray(networks) ? networks : []).flatMap((n) =>
    typeof n.id === 'string' && typeof n.network_interface === 'string' ? [[n.id, n.network_interface] as const] : []));
}
