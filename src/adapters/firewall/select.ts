import { iptablesBackend } from '../iptables/backend.js';
import { nftAvailable } from '../nftables/nft.js';
import { nftablesBackend } from '../nftables/backend.js';
import type { FirewallBackend } from './backend.js';
import { runTool } from './run-tool.js';

/**
 * `auto`: nftables where `nft` runs and the kernel takes our table, else iptables. The iptables
 * backend uses the same variant as the host's `iptables` (what Docker uses): its DOCKER-USER chain
 * lives only in that variant's tables.
 */
export async function selectBackend(choice: 'auto' | 'nftables' | 'iptables'): Promise<FirewallBackend> {
  if (choice === 'nftables' || (choice === 'auto' && (await nftAvailable()))) return nftablesBackend();
  return iptablesBackend({ variant: await iptablesVariant() });
}

/** `iptables v1.8.9 (nf_tables)` or `(legacy)`. */
async function iptablesVariant(): Promise<'nft' | 'legacy'> {
  const version = await runTool(['iptables', '-V'], '', undefined);
  return version.includes('(legacy)') ? 'legacy' : 'nft';
}
