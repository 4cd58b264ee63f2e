/**
 * Repairs our nftables tables the moment someone else changes them, not at the next drift check: the
 * kernel tells every listener of each object created or deleted (adapters/nftables/table-events.ts),
 * and a change to one of our tables runs that table's drift check and repair at once (debounced a
 * few ms, so `nft flush ruleset`'s many notifications cost one check). The periodic drift check
 * stays: for set elements (below), for rules in tables shared with others (iptables-nft's `filter`),
 * and wherever the notifications cannot be had (iptables-legacy).
 */
import { watchTableEvents, type TableEvent, type TableEventWatch } from '../adapters/nftables/table-events.js';
import type { Logger } from './logger.js';

export interface WatchedTable {
  /** As nft spells them: `inet dockwarden`; one check for all of them. */
  readonly tables: readonly string[];
  /**
   * Tables others write to as well (iptables-nft's `ip filter`, where Docker adds and deletes rules at
   * every container start and stop): only a table or chain deleted calls for a check there.
   */
  readonly shared: boolean;
  /** The tables' drift check, which repairs what differs (an enforcer's `repairDrift`). */
  readonly check: () => Promise<unknown>;
  /** The same when the table itself was deleted (`repairNow`): no read beside the queue, which could only find it missing. */
  readonly repair: () => Promise<unknown>;
  /** The log message when the check fails. */
  readonly failure: string;
}

/** One `nft flush ruleset` or `delete table` arrives as a few datagrams within microseconds. */
const DEBOUNCE_MS = 5;

/**
 * Whether an event calls for a check of `table`: any object of it created or deleted (a table
 * deleted or made dormant, a chain or rule deleted or added, a set deleted), and anything lost.
 * Set elements are not: the daemon's own element updates (every container start and stop) make
 * them, and the notification does not say who made a change in a way the daemon can match to its
 * own nft runs in every setup (the committing pid is the initial pid namespace's), so a check per
 * element update would cost a full read of the table each time. Elements changed by others are
 * found by the periodic drift check, as before.
 */
export function calledFor(event: TableEvent, table: string, shared = false): boolean {
  if (event.kind === 'unknown') return true;
  if (`${event.family} ${event.table}` !== table) return false;
  return shared ? event.message === 'deltable' || event.message === 'delchain' : event.message !== 'newsetelem' && event.message !== 'delsetelem';
}

/** Whether `event` is the deletion of `table` itself (each `nft flush ruleset` deletes every table). */
export const deleted = (event: TableEvent, table: string): boolean =>
  event.kind === 'change' && event.message === 'deltable' && `${event.family} ${event.table}` === table;

/**
 * Listens for changes to `tables` until `close()`; null (said once, in the log) when the kernel's
 * notifications cannot be had here, and the periodic drift check is all there is.
 */
export function watchOwnTables(tables: readonly WatchedTable[], log: Logger): TableEventWatch | null {
  if (tables.length === 0) return null;
  const checks = tables.map((watched) => ({ watched, check: coalesced(watched, log) }));
  try {
    const handle = watchTableEvents((events) => {
      for (const { watched, check } of checks) {
        const cause = events.find((event) => watched.tables.some((table) => calledFor(event, table, watched.shared)));
        if (cause === undefined) continue;
        log.debug({ tables: watched.tables, cause }, 'nftables change to our table; checking it now');
        check(events.some((event) => watched.tables.some((table) => deleted(event, table))));
      }
    });
    log.info({ tables: tables.flatMap((t) => t.tables) }, 'watching nftables changes to our tables');
    return handle;
  } catch (error) {
    log.warn({ err: error }, 'nftables change notifications unavailable; drift is found by the periodic drift check only');
    return null;
  }
}

/**
 * Runs the table's check after DEBOUNCE_MS (its repair when a request said the table was deleted); a
 * request while one runs makes one more run after it.
 */
function coalesced(watched: WatchedTable, log: Logger): (gone: boolean) => void {
  let timer: NodeJS.Timeout | null = null;
  let running = false;
  let again = false;
  let wasDeleted = false;
  const run = (): void => {
    timer = null;
    running = true;
    const gone = wasDeleted;
    wasDeleted = false;
    (gone ? watched.repair() : watched.check())
      .catch((error: unknown) => log.error({ err: error }, watched.failure))
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          request(false);
        }
      });
  };
  const request = (gone: boolean): void => {
    wasDeleted ||= gone;
    if (running) again = true;
    else timer ??= setTimeout(run, DEBOUNCE_MS).unref();
  };
  return request;
}
