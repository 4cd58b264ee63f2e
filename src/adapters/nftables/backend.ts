import { sameElementsApart } from '../../domain/firewall/plan.js';
import type { FirewallBackend } from '../firewall/backend.js';
import { listAuditCounts, listTable, nextTurn, runNft, showTable, type NftOptions } from './nft.js';
import { nftBatch } from './nft-batch.js';
import { renderElementChanges, renderRemoval, renderTable, TABLE } from './render.js';

/** Plan-wide interface lists, which change only by a replace (like `defaultDeny`). */
const INTERFACE_LISTS = ['routed4', 'routed6', 'otherBridges'] as const;

/**
 * `table inet dockwarden`: a constant set of chains, containers only in set elements. A container
 * start or stop is one small element transaction; everything else is an atomic table replace.
 */
export function nftablesBackend(options: NftOptions = {}): FirewallBackend {
  // The chains as the kernel printed them right after our last replace: edited rules show up as a change.
  let lastSkeleton: { defaultDeny: boolean; audit: boolean; skeleton: string } | null = null;
  // Audit counters as last read, by element: the kernel's counters only grow while their element lives.
  let lastCounts = new Map<string, number>();

  return {
    name: 'nftables',
    nfTables: { tables: [TABLE], shared: false },
    async replace(plan) {
      await runNft(renderTable(plan), options);
      const installed = await listTable(options);
      lastSkeleton = installed && { defaultDeny: plan.defaultDeny, audit: plan.audit ?? false, skeleton: installed.skeleton };
    },
    async update(diff) {
      const script = renderElementChanges(diff);
      if (script !== '') await nftBatch(options).apply(script);
    },
    // Containers are set elements only: an element transaction changes its elements and nothing else,
    // so a read that overlapped some compares every other element exactly.
    readsWhileChanging: true,
    async drift(expected, changing) {
      // Read beside events (`changing` given), nft runs as background work. The parse and the comparison
      // give events a turn every few thousand elements (at 10,000 containers each held the event loop
      // 0.1–0.3 s in one piece).
      const installed = await listTable({ ...options, background: changing !== undefined });
      if (!installed) return 'table inet dockwarden is missing';
      if (installed.foreign.length > 0) return `${installed.foreign.length} element(s) dockwarden did not add`;
      if (!(await sameElementsApart(installed.plan, expected, changing ?? new Set(), nextTurn))) return 'set elements differ from what dockwarden applied';
      if (installed.plan.defaultDeny !== expected.defaultDeny) return 'the fail-closed baseline differs from the policy';
      if (INTERFACE_LISTS.some((list) => installed.plan[list].toSorted().join() !== expected[list].join())) return 'routed or other bridges differ from what dockwarden applied';
      if ((installed.plan.audit ?? false) !== (expected.audit ?? false)) return 'the audit mode differs from the policy';
      if (lastSkeleton?.defaultDeny === expected.defaultDeny && lastSkeleton.audit === (expected.audit ?? false) && lastSkeleton.skeleton !== installed.skeleton) return 'chains or rules were edited';
      return null;
    },
    async installed() {
      return (await listTable(options)) !== null;
    },
    async remove() {
      if ((await listTable(options)) !== null) await runNft(renderRemoval(), options);
      lastSkeleton = null;
    },
    async wouldHaveDropped() {
      const counts = await listAuditCounts(options);
      const key = (c: (typeof counts)[number]): string => `${c.source} ${c.hostAddress} ${c.proto} ${c.port}`;
      // A counter below the last reading belongs to an element made again (expired, or a replace): all of it is new.
      const grown = counts.map((c) => {
        const last = lastCounts.get(key(c)) ?? 0;
        return { ...c, connections: c.connections >= last ? c.connections - last : c.connections };
      });
      lastCounts = new Map(counts.map((c) => [key(c), c.connections]));
      return grown.filter((c) => c.connections > 0);
    },
    async show() {
      return (await showTable(options)) ?? '# table inet dockwarden is not installed\n';
    },
  };
}
