import { iptablesBackend } from '../iptables/backend.js';
import { nftAvailable } from '../nftables/nft.js';
import { nftablesBackend, type NftBackendOptions } from '../nftables/backend.js';
import type { FirewallBackend } from './backend.js';
import { runTool } from './run-tool.js';

/**
 * `auto`: nftables where `nft` runs and the kernel takes our table, else iptables. The iptables
 * backend uses the same variant as the host's `iptables` (what Docker uses): its DOCKER-USER chain
 * lives only in that variant's tables. `nftables`: the nftables backend's guard (iptables has none:
 * iptables cannot own a table).
 */
export async function selectBackend(choice: 'auto' | 'nftables' | 'iptables', nftables: Pick<NftBackendOptions, 'guard' | 'guardRefused' | 'engineCgroupGone'> = {}): Promise<FirewallBackend> {
  if (choice === 'nftables' || (choice === 'auto' && (await nftAvailable()))) return nftablesBackend(nftables);
  return iptablesBackend({ variant: await iptablesVariant() });
}

/** `iptables v1.8.9 (nf_tables)` or `(legacy)`. */
async function iptablesVariant(): Promise<'nft' | 'legacy'> {
  const version = await runTool(['iptables', '-V'], '', undefined);
  return version.includes('(legacy)') ? 'legacy' : 'nft';
}
