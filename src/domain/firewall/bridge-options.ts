/**
 * The firewall's view of Docker's bridge networks (README "Published-port filtering"). Pure.
 */
import type { PlanOptions } from './plan.js';

/** One Docker bridge network, as the engine lists it. */
export interface DockerBridge {
  readonly name: string;
  /** The Linux bridge. */
  readonly interfaceName: string;
  /** Docker's routed mode for the family (`com.docker.network.bridge.gateway_mode_ipv4|6=routed`). */
  readonly routed4: boolean;
  readonly routed6: boolean;
}

/**
 * Every Docker bridge, and those whose containers may be reached at their own addresses: a network
 * the policy excepts (`network.exceptions`, by name) for both families, a routed-mode one for its family.
 */
export function bridgeOptions(networks: readonly DockerBridge[], exceptions: readonly string[]): Required<Pick<PlanOptions, 'bridges' | 'routed4' | 'routed6'>> {
  const excepted = new Set(exceptions);
  const routed = (family: 'routed4' | 'routed6'): string[] =>
    networks.filter((n) => n[family] || excepted.has(n.name)).map((n) => n.interfaceName);
  return { bridges: networks.map((n) => n.interfaceName), routed4: routed('routed4'), routed6: routed('routed6') };
}
