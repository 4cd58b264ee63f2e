import { bridgeVeths } from '../adapters/netns/bridge-veths.js';
import { nftBridgeFilter } from '../adapters/nftables/bridge-backend.js';
import type { Alerter } from './alerts/alerter.js';
import { BridgeEnforcer } from './bridge-enforcer.js';
import type { Logger } from './logger.js';
import type { DaemonMetrics } from './metrics.js';

/** How often the per-port drop counters are read for spoofing alerts. */
export const SPOOFING_CHECK_MS = 10_000;

/**
 * Bridge isolation where the kernel takes our bridge table, with its alerts; else null, said once
 * at start-up (the published-port firewall does not depend on it).
 */
export async function bridgeIsolation(log: Logger, alerter: Alerter, metrics: DaemonMetrics): Promise<BridgeEnforcer | null> {
  const filter = nftBridgeFilter();
  if (!(await filter.available())) {
    log.error('bridge isolation unavailable: nft does not take the bridge table here; containers are not kept from spoofing');
    return null;
  }
  return new BridgeEnforcer(filter, bridgeVeths, log, {
    onDriftRepaired: (drift) => alerter.raise({ check: 'daemon.bridge-drift-repaired', severity: 'high', action: 'repaired', message: 'bridge isolation drift repaired', details: { drift } }),
    onSpoofing: (container, drops, reasons, audit) => alerter.raise({
      check: 'spoofing', severity: 'high', action: 'alert', container, details: { drops, reasons },
      message: audit ? `would have dropped ${drops} spoofed frames from a container on its bridge` : 'spoofed frames from a container dropped on its bridge',
    }),
    onFilterFailed: (container, error) => {
      metrics.bridgeFilterFailed();
      alerter.raise({ check: 'daemon.bridge-filter-failed', severity: 'high', action: 'none', message: 'bridge isolation could not be applied to a container', container, details: { error: error.slice(0, 1000) } });
    },
  });
}
