import { selectBackend } from '../adapters/firewall/select.js';
import { nftBridgeFilter } from '../adapters/nftables/bridge-backend.js';
import type { Config } from '../app/config.js';
import { FirewallEnforcer } from '../app/firewall-enforcer.js';
import { createLogger } from '../app/logger.js';
import { readFirewallState, startOptions } from '../app/firewall-state.js';
import { policyOrReport } from './policy-or-report.js';

/** `dockwarden firewall show | baseline | remove`. */
export async function firewallCommand(config: Config, action: string): Promise<number> {
  const backend = await selectBackend(config.firewall.backend);
  // Bridge isolation is nftables only, whichever backend filters published ports.
  const bridge = nftBridgeFilter();
  const bridgeHere = action !== 'baseline' && (await bridge.available());
  switch (action) {
    case 'show':
      process.stdout.write(await backend.show());
      if (bridgeHere) process.stdout.write(await bridge.show());
      return 0;
    case 'remove':
      await backend.remove();
      process.stdout.write(`dockwarden: ${backend.name} ruleset removed; published ports are no longer filtered\n`);
      if (bridgeHere) {
        await bridge.remove();
        process.stdout.write('dockwarden: bridge isolation table removed; containers are no longer kept from spoofing\n');
      }
      return 0;
    case 'baseline': {
      // Boot, before docker.service: close every published port until the daemon judges it.
      const policy = policyOrReport(config.policy.file);
      const saved = readFirewallState(config.state.dir);
      const defaultDeny = policy ? policy.ports.default === 'deny' : (saved?.defaultDeny ?? true);
      const enforcer = new FirewallEnforcer(backend, createLogger(config.log.level, process.stderr), startOptions(saved, defaultDeny, config.firewall.otherBridges));
      const installed = await enforcer.baseline(saved?.ports);
      process.stdout.write(
        installed
          ? `dockwarden: ${backend.name} baseline installed (${defaultDeny ? 'new connections to unjudged published ports are dropped' : 'ports.default is allow: nothing is dropped'})\n`
          : `dockwarden: a ${backend.name} ruleset of dockwarden is already installed; left as it is\n`,
      );
      return 0;
    }
    default:
      process.stderr.write(`dockwarden: unknown firewall action ${JSON.stringify(action)}; expected show, baseline or remove\n`);
      return 2;
  }
}
