import { nftBridgeFilter, type BridgeFilter } from '../adapters/nftables/bridge-backend.js';
import type { Alerter } from './alerts/alerter.js';
import { BridgeEnforcer } from './bridge-enforcer.js';
import type { Logger } from './logger.js';
import type { DaemonMetrics } from './metrics.js';
import { observedAlert } from '../domain/alerts/catalogue.js';

/** How often the per-port drop counters are read for spoofing alerts. */
export const SPOOFING_CHECK_MS = 10_000;

/**
 * The bridge filter where the kernel takes our bridge table (one `nft -c`), else null, said once at
 * start-up (the published-port firewall does not depend on it). Asked before the policy is known.
 */
export async function bridgeFilterHere(log: Logger): Promise<BridgeFilter | null> {
  const filter = nftBridgeFilter();
  if (await filter.available()) return filter;
  log.error('bridge isolation unavailable: nft does not take the bridge table here; containers are not kept from spoofing');
  return null;
}

/** Bridge isolation through `filter`, with its alerts. */
export function bridgeIsolation(filter: BridgeFilter, log: Logger, alerter: Alerter, metrics: DaemonMetrics): BridgeEnforcer {
  return new BridgeEnforcer(filter, log, {
    onDriftRepaired: (drift) => alerter.raise(observedAlert('daemon.bridge-drift-repaired', 'bridge isolation drift repaired', { details: { drift } })),
    onSpoofing: (container, drops, reasons, audit) =>
      alerter.raise(observedAlert('spoofing', audit ? `would have dropped ${drops} spoofed frames from a container on its bridge` : 'spoofed frames from a container dropped on its bridge', { container, details: { drops, reasons } })),
    onFilterFailed: (container, error) => {
      metrics.bridgeFilterFailed();
      alerter.raise(observedAlert('daemon.bridge-filter-failed', 'bridge isolation could not be applied to a container', { container, details: { error: error.slice(0, 1000) } }));
    },
  });
}
