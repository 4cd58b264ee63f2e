import type { BridgePort } from '../../domain/bridge/ports.js';
import { BRIDGE_TABLE, renderBridgeChanges, renderBridgeRemoval, renderBridgeTable, SPOOFING_REASONS, type SpoofingReason } from './bridge-render.js';
import { isObject, listJson, listOrNull, nextTurn, nftAccepts, runNft, setElements, comparableJson, tableExists, type Json, type NftOptions } from './nft.js';
import { nftBatch } from './nft-batch.js';

/** Frames one bridge port sent that were (or in audit mode would have been) dropped, in all and by reason. */
export interface PortDrops {
  readonly total: number;
  readonly reasons: Readonly<Partial<Record<SpoofingReason, number>>>;
}

/** The kernel side of bridge isolation: `table bridge dockwarden_bridge`. */
export interface BridgeFilter {
  /** Whether nft runs here and the kernel takes the table (bridge family, concatenations, raw payload). */
  available(): Promise<boolean>;
  /** Atomic: after a failure the previous table is intact. `audit`: spoofed frames are counted, not dropped. */
  replace(ports: readonly BridgePort[], audit: boolean): Promise<void>;
  /** Fails when the kernel lacks an element to delete (someone edited it): the caller then replaces. */
  update(remove: readonly BridgePort[], add: readonly BridgePort[]): Promise<void>;
  /** What the kernel holds (one `nft -j list`); null when the table is missing. `background`: nft at a low CPU priority (a drift check beside events). */
  read(background?: boolean): Promise<BridgeTableState | null>;
  /** Whether the table is there, from the table names alone (as the port firewall's `installed`). */
  installed(): Promise<boolean>;
  /** `read`'s skeleton alone, from a terse list (`nft -j -t`: no elements to print or parse); null when the table is missing. */
  skeleton(): Promise<string | null>;
  /** Frames dropped (or in audit mode, let through) so far, by bridge port. */
  drops(): Promise<Map<string, PortDrops>>;
  remove(): Promise<void>;
  show(): Promise<string>;
}

/** The bridge table as read back, in comparable form. */
export interface BridgeTableState {
  /** Set declarations, chains and rules without handles, counter values or elements: constant for our table. */
  readonly skeleton: string;
  /** Every element as `bridgeElements` writes it (`SET a . b`); anything else as its JSON, so it differs. */
  readonly elements: readonly string[];
}

const TABLE_ARGS = ['bridge', 'dockwarden_bridge'];

export function nftBridgeFilter(options: NftOptions = {}): BridgeFilter {
  return {
    available: () => nftAccepts(renderBridgeTable([]), options),
    replace: (ports, audit) => runNft(renderBridgeTable(ports, audit), options),
    async update(remove, add) {
      const script = renderBridgeChanges(remove, add);
      if (script !== '') await nftBatch(options).apply(script);
    },
    async read(background = false) {
      const json = await listJson(['table', ...TABLE_ARGS], { ...options, background });
      return json === null ? null : tableState(json);
    },
    installed: () => tableExists(options, BRIDGE_TABLE),
    async skeleton() {
      const json = await listJson(['table', ...TABLE_ARGS], options, true);
      return json === null ? null : (await tableState(json)).skeleton;
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

/** Elements read between two turns given to other work (a table of 10,000 ports holds ~130,000). */
const ELEMENTS_PER_TURN = 2_000;

async function tableState(json: Json): Promise<BridgeTableState> {
  const objects = isObject(json) && Array.isArray(json.nftables) ? json.nftables : [];
  const elements: string[] = [];
  const skeleton: Json[] = [];
  for (const object of objects) {
    if (isObject(object) && isObject(object.set)) {
      const { elem = [], ...declaration } = object.set;
      skeleton.push({ set: declaration });
      for (const element of Array.isArray(elem) ? elem : [elem]) {
        elements.push(`${String(object.set.name)} ${elementText(element)}`);
        if (elements.length % ELEMENTS_PER_TURN === 0) await nextTurn();
      }
    } else {
      skeleton.push(object);
    }
  }
  return { skeleton: comparableJson(skeleton, true), elements };
}

/** `"veth0"`, `{"concat": ["veth0", "02:42:…"]}`, `{"elem": {"val": "veth0", "counter": …}}` → `veth0`, `veth0 . 02:42:…`. */
function elementText(element: Json): string {
  const value = isObject(element) && isObject(element.elem) ? element.elem.val : element;
  if (typeof value === 'string') return value;
  if (isObject(value) && Array.isArray(value.concat) && value.concat.every((part) => typeof part === 'string')) return value.concat.join(' . ');
  return JSON.stringify(element);
}

