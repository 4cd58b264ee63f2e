import type { BridgePort } from '../../domain/bridge/ports.js';
import { renderBridgeChanges, renderBridgeRemoval, renderBridgeTable } from './bridge-render.js';
import { isObject, listJson, listOrNull, nftAccepts, runNft, withoutCounts, type Json, type NftOptions } from './nft.js';

/** The kernel side of bridge isolation: `table bridge dockwarden_bridge`. */
export interface BridgeFilter {
  /** Whether nft runs here and the kernel takes the table (bridge family, concatenations, raw payload). */
  available(): Promise<boolean>;
  /** Atomic: after a failure the previous table is intact. */
  replace(ports: readonly BridgePort[]): Promise<void>;
  /** Fails when the kernel lacks an element to delete (someone edited it): the caller then replaces. */
  update(remove: readonly BridgePort[], add: readonly BridgePort[]): Promise<void>;
  /** The table without handles and counter values, to compare with a later one; null when missing. */
  snapshot(): Promise<string | null>;
  /** Frames dropped so far, by bridge port. */
  drops(): Promise<Map<string, number>>;
  remove(): Promise<void>;
  show(): Promise<string>;
}

const TABLE_ARGS = ['bridge', 'dockwarden_bridge'];

export function nftBridgeFilter(options: NftOptions = {}): BridgeFilter {
  return {
    available: () => nftAccepts(renderBridgeTable([]), options),
    replace: (ports) => runNft(renderBridgeTable(ports), options),
    async update(remove, add) {
      const script = renderBridgeChanges(remove, add);
      if (script !== '') await runNft(script, options);
    },
    async snapshot() {
      const json = await listJson(['table', ...TABLE_ARGS], options);
      return json === null ? null : JSON.stringify(withoutHandles(withoutCounts(json)));
    },
    async drops() {
      const json = await listJson(['set', ...TABLE_ARGS, 'drops'], options);
      const counts = new Map<string, number>();
      for (const elem of setElements(json)) {
        const { val, counter } = elem;
        const packets = isObject(counter) ? counter.packets : undefined;
        if (typeof val === 'string' && typeof packets === 'number') counts.set(val, packets);
      }
      return counts;
    },
    async remove() {
      if ((await listOrNull(['list', 'table', ...TABLE_ARGS], options)) !== null) await runNft(renderBridgeRemoval(), options);
    },
    async show() {
      return (await listOrNull(['list', 'table', ...TABLE_ARGS], options)) ?? '# table bridge dockwarden_bridge is not installed\n';
    },
  };
}

/** `{"nftables": [{"set": {"elem": [{"elem": {"val", "counter"}}]}}]}` → the inner elem objects. */
function setElements(json: Json | null): Array<{ [key: string]: Json }> {
  const objects = isObject(json) && Array.isArray(json.nftables) ? json.nftables : [];
  const set = objects.map((o) => (isObject(o) ? o.set : undefined)).find(isObject);
  const elems = set && Array.isArray(set.elem) ? set.elem : [];
  return elems.map((e) => (isObject(e) ? e.elem : undefined)).filter(isObject);
}

function withoutHandles(value: Json): Json {
  if (Array.isArray(value)) return value.map(withoutHandles);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([k]) => k !== 'handle' && k !== 'metainfo').map(([k, v]) => [k, withoutHandles(v)]));
}
