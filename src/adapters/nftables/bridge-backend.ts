import type { BridgePort } from '../../domain/bridge/ports.js';
import { renderBridgeChanges, renderBridgeRemoval, renderBridgeTable, SPOOFING_REASONS, type SpoofingReason } from './bridge-render.js';

/** Frames one bridge port sent that were (or in audit mode would have been) dropped, in all and by reason. */
export interface PortDrops {
  readonly total: number;
  readonly reasons: Readonly<Partial<Record<SpoofingReason, number>>>;
}
import { isObject, listJson, listOrNull, nftAccepts, runNft, setElements, withoutCounts, type Json, type NftOptions } from './nft.js';

/** The kernel side of bridge isolation: `table bridge dockwarden_bridge`. */
export interface BridgeFilter {
  /** Whether nft runs here and the kernel takes the table (bridge family, concatenations, raw payload). */
  available(): Promise<boolean>;
  /** Atomic: after a failure the previous table is intact. `audit`: spoofed frames are counted, not dropped. */
  replace(ports: readonly BridgePort[], audit: boolean): Promise<void>;
  /** Fails when the kernel lacks an element to delete (someone edited it): the caller then replaces. */
  update(remove: readonly BridgePort[], add: readonly BridgePort[]): Promise<void>;
  /** The table without handles and counter values, to compare with a later one; null when missing. */
  snapshot(): Promise<string | null>;
  /** Frames dropped (or in audit mode, let through) so far, by bridge port. */
  drops(): Promise<Map<string, PortDrops>>;
  remove(): Promise<void>;
  show(): Promise<string>;
}

const TABLE_ARGS = ['bridge', 'dockwarden_bridge'];

export function nftBridgeFilter(options: NftOptions = {}): BridgeFilter {
  return {
    available: () => nftAccepts(renderBridgeTable([]), options),
    replace: (ports, audit) => runNft(renderBridgeTable(ports, audit), options),
    async update(remove, add) {
      const script = renderBridgeChanges(remove, add);
      if (script !== '') await runNft(script, options);
    },
    async snapshot() {
      const json = await listJson(['table', ...TABLE_ARGS], options);
      return json === null ? null : JSON.stringify(withoutHandles(withoutCounts(json)));
    },
    async drops() {
      // One listing of the whole table: every counter set at the same moment, one process.
      const json = await listJson(['table', ...TABLE_ARGS], options);
      const counts = (set: string): Map<string, number> => {
        const byPort = new Map<string, number>();
        for (const { val, counter } of setElements(json, set)) {
          const packets = isObject(counter) ? counter.packets : undefined;
          if (typeof val === 'string' && typeof packets === 'number') byPort.set(val, packets);
        }
        return byPort;
      };
      const byReason = SPOOFING_REASONS.map((reason) => [reason, counts(`count_${reason}`)] as const);
      const result = new Map<string, PortDrops>();
      for (const [port, total] of counts('drops')) {
        const reasons = Object.fromEntries(byReason.flatMap(([reason, ports]) => ((ports.get(port) ?? 0) > 0 ? [[reason, ports.get(port)!]] : [])));
        result.set(port, { total, reasons });
      }
      return result;
    },
    async remove() {
      if ((await listOrNull(['list', 'table', ...TABLE_ARGS], options)) !== null) await runNft(renderBridgeRemoval(), options);
    },
    async show() {
      return (await listOrNull(['list', 'table', ...TABLE_ARGS], options)) ?? '# table bridge dockwarden_bridge is not installed\n';
    },
  };
}

function withoutHandles(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutHandles);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'handle' && k !== 'metainfo').map(([k, v]) => [k, withoutHandles(v)]));
}
