import { nftAvailable } from '../nftables/nft.js';
import { nftablesBackend } from '../nftables/backend.js';
import type { FirewallBackend } from './backend.js';

/** `auto`: nftables where `nft` runs and the kernel takes our table, else iptables. */
export async function selectBackend(choice: 'auto' | 'nftables' | 'iptables'): Promise<FirewallBackend> {
  if (choice === 'nftables' || (choice === 'auto' && (await nftAvailable()))) return nftablesBackend();
  throw new Error('the iptables backend is not available in this build; set firewall.backend: nftables');
}
