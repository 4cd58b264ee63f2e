/**
 * The kernel's nf_tables change notifications as a typed stream (native/nft_events.c): every object
 * created or deleted in any table of this network namespace, named by family, table and message,
 * as the kernel commits it. Lost or refused notifications come as `unknown`: something changed,
 * look at everything. Listening needs CAP_NET_ADMIN and changes nothing.
 */
import { loadAddon } from '../native-addon.js';

/** The NFT_MSG_* notifications (linux/netfilter/nf_tables.h) by number; others are `other`. */
const MESSAGES = {
  0: 'newtable', 2: 'deltable', 3: 'newchain', 5: 'delchain', 6: 'newrule', 8: 'delrule', 9: 'newset', 11: 'delset',
  12: 'newsetelem', 14: 'delsetelem', 18: 'newobj', 20: 'delobj', 22: 'newflowtable', 24: 'delflowtable',
} as const;
export type NftMessage = (typeof MESSAGES)[keyof typeof MESSAGES] | 'other';

/** NFPROTO_* (nfgenmsg's family) as nft spells them. */
const FAMILIES = { 1: 'inet', 2: 'ip', 3: 'arp', 5: 'netdev', 7: 'bridge', 10: 'ip6' } as const;
export type NftFamily = (typeof FAMILIES)[keyof typeof FAMILIES] | 'other';

export type TableEvent =
  | { readonly kind: 'change'; readonly family: NftFamily; readonly table: string; readonly message: NftMessage }
  /** overrun: the receive buffer overflowed; malformed: a notification the parser refused. */
  | { readonly kind: 'unknown'; readonly reason: 'overrun' | 'malformed' };

/** Keep it referenced until `close()`: a handle the garbage collector takes stops listening. */
export interface TableEventWatch {
  close(): void;
}

type RawEvent = readonly [family: number, type: number, table: string];

interface Addon {
  watch(callback: (events: RawEvent[], problem: 'overrun' | 'malformed' | null) => void): TableEventWatch;
  parse(datagram: Buffer): { readonly events: RawEvent[]; readonly malformed: boolean };
}

let loaded: Addon | undefined;
const addon = (): Addon => (loaded ??= loadAddon<Addon>('dw_nftevents'));

const typed = ([family, type, table]: RawEvent): TableEvent => ({
  kind: 'change',
  family: (FAMILIES as Record<number, NftFamily>)[family] ?? 'other',
  table,
  message: (MESSAGES as Record<number, NftMessage>)[type] ?? 'other',
});

const withProblem = (events: readonly RawEvent[], problem: 'overrun' | 'malformed' | null): TableEvent[] => [
  ...events.map(typed),
  ...(problem === null ? [] : [{ kind: 'unknown', reason: problem } as const]),
];

/**
 * Calls `onEvents` with the notifications of each datagram the kernel sends, on the event loop,
 * until `close()`; the watch does not keep the process alive. Throws (with the errno name as `code`)
 * when the socket cannot be opened: EPERM without CAP_NET_ADMIN, EPROTONOSUPPORT without nfnetlink.
 */
export function watchTableEvents(onEvents: (events: TableEvent[]) => void): TableEventWatch {
  return addon().watch((events, problem) => onEvents(withProblem(events, problem)));
}

/** The native parser on one datagram: what `watchTableEvents` would report for it. */
export function parseNotifications(datagram: Buffer): TableEvent[] {
  const { events, malformed } = addon().parse(datagram);
  return withProblem(events, malformed ? 'malformed' : null);
}
