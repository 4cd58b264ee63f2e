import { sameElementsApart } from '../../domain/firewall/plan.js';
import type { FirewallBackend } from '../firewall/backend.js';
import type { FirewallPlan } from '../../domain/firewall/plan.js';
import { listAuditCounts, listSkeleton, listTable, tableExists, nextTurn, runNft, showTable, type InstalledTable, type NftOptions } from './nft.js';
import { nftBatch } from './nft-batch.js';
import type { NftSession } from './nft-session.js';
import { GUARD_TABLE, renderElementChanges, renderRemoval, renderTable, renderTableAndGuard, TABLE } from './render.js';

/** Plan-wide interface lists, which change only by a replace (like `defaultDeny`). */
const INTERFACE_LISTS = ['routed4', 'routed6', 'otherBridges'] as const;

/** The chains as the kernel printed them right after our last replace: edited rules show up as a change. */
interface Skeleton {
  readonly defaultDeny: boolean;
  readonly audit: boolean;
  readonly skeleton: string;
}

/** The skeleton could not be read after the last replace: a drift check finds drift, and its repair replaces and reads again. */
const UNREAD = 'unread';

/** What a drift check compares the chains with: null when nothing of ours was written in this run (or the table was gone at once). */
type Recorded = Skeleton | null | typeof UNREAD;

export interface NftBackendOptions extends NftOptions {
  /**
   * The guard (README "Published ports" › The guard): every write goes through this `nft -i` process
   * (the bridge filter's element updates too, in the same batch), and each replace writes, in the
   * same transaction, a copy of the table that the process owns, which `nft flush ruleset` cannot take.
   */
  readonly guard?: NftSession;
  /** The guard could not be written, and `inet dockwarden` was written alone, by an nft of its own. */
  readonly guardRefused?: (error: unknown) => void;
  /** The plan's `engineCgroup` was gone (nft found no such path): the table was written without its rule. */
  readonly engineCgroupGone?: (error: unknown) => void;
}

/**
 * `table inet dockwarden`: a constant set of chains, containers only in set elements. A container
 * start or stop is one small element transaction; everything else is an atomic table replace.
 */
export function nftablesBackend(options: NftBackendOptions = {}): FirewallBackend {
  const { guard, guardRefused = () => {}, engineCgroupGone = () => {}, ...nft } = options;
  // Read after each replace and awaited by the drift checks only: the table is in place once written, and
  // whoever waits for a replace (the start-up reconcile, READY) need not wait for two `nft -j -t` runs too
  // (~0.1 s at 1,000 containers). Begun at once, though each spawn holds the event loop ~5–10 ms: the chains
  // read are what later checks compare with, so the later the read, the longer an edit made right after our
  // write passes for ours, or a deletion leaves nothing to compare with (a repair that then says nothing).
  // A terse list shows no elements, so element updates meanwhile change nothing in it.
  let lastSkeleton: Promise<Recorded> = Promise.resolve(null);
  let guardSkeleton: Promise<Recorded> = Promise.resolve(null);
  /** The guard's process as of the last replace that wrote the guard (`NftSession.holder`); null: no guard written. */
  let guardHolder: number | null = null;
  const guardHeld = (): boolean => guardHolder !== null && guard?.holder === guardHolder;
  // Audit counters as last read, by element: the kernel's counters only grow while their element lives.
  let lastCounts = new Map<string, number>();
  if (guard) nftBatch(nft).through((script) => guard.run(script).then(() => {}));

  const recorded = (plan: FirewallPlan, read: Promise<string | null>): Promise<Recorded> =>
    read.then((skeleton) => (skeleton === null ? null : { defaultDeny: plan.defaultDeny, audit: plan.audit ?? false, skeleton }), () => UNREAD);

  /** Writes the table and, with a guard, the guard in the same transaction; the table alone when the guard cannot be. */
  const write = async (plan: FirewallPlan): Promise<void> => {
    guardHolder = null;
    let refusal: unknown = null;
    // Twice: a process that ended (or was abandoned) under the first is replaced by the second.
    for (let attempt = 0; guard && attempt < 2; attempt++) {
      try {
        guardHolder = await guard.run(renderTableAndGuard(plan));
        return;
      } catch (error) {
        refusal = error;
      }
    }
    // Whatever the guard's trouble (its process, its table), ours must not wait for it: the script
    // alone, by an nft of its own. Only when that works was the guard the trouble.
    await runNft(renderTable(plan), nft);
    if (guard) guardRefused(refusal);
  };

  /**
   * `write`, and when nft cannot find the engine's cgroup (dockerd restarted, its cgroup made again
   * under a new id and the old path gone, or not yet made), `write` without it: one path must not cost
   * the whole ruleset. The daemon gives the new path when it reconnects to the engine.
   */
  const writeOrWithoutCgroup = async (plan: FirewallPlan): Promise<void> => {
    try {
      await write(plan);
    } catch (error) {
      if (plan.engineCgroup === undefined || !(error instanceof Error) || !error.message.includes('cgroupv2 path fails')) throw error;
      const { engineCgroup: _gone, ...without } = plan;
      await write(without);
      engineCgroupGone(error);
    }
  };

  return {
    name: 'nftables',
    nfTables: { tables: [TABLE], shared: false },
    async replace(plan) {
      await writeOrWithoutCgroup(plan);
      lastSkeleton = recorded(plan, listSkeleton(nft));
      guardSkeleton = guardHeld() ? recorded(plan, listSkeleton(nft, GUARD_TABLE)) : Promise.resolve(null);
    },
    async update(diff) {
      const script = renderElementChanges(diff);
      if (script !== '') await nftBatch(nft).apply(guardHeld() ? script + renderElementChanges(diff, GUARD_TABLE) : script);
    },
    // Containers are set elements only: an element transaction changes its elements and nothing else,
    // so a read that overlapped some compares every other element exactly.
    readsWhileChanging: true,
    async drift(expected, changing) {
      // Read beside events (`changing` given), nft runs as background work.
      const read = { ...nft, background: changing !== undefined };
      const guarded = guardHolder !== null;
      // Those of the replace before this read: one that overlaps the read makes the caller read again (KernelSync).
      const [tableSkeleton, guardedSkeleton] = [lastSkeleton, guardSkeleton];
      const [installed, guardInstalled] = await Promise.all([listTable(read), guarded ? listTable(read, GUARD_TABLE) : null]);
      const drift = await compare(TABLE, installed, await tableSkeleton, expected, changing);
      if (drift !== null || !guarded) return drift;
      // Nobody else can change the guard (EPERM); it goes when its process ends, and is then written again.
      if (!guardHeld()) return `table ${GUARD_TABLE} is gone with the nft process that held it`;
      const guardDrift = await compare(GUARD_TABLE, guardInstalled, await guardedSkeleton, expected, changing);
      return guardDrift && `the guard: ${guardDrift}`;
    },
    installed: () => tableExists(nft),
    async remove() {
      if (await tableExists(nft)) await runNft(renderRemoval(), nft);
      lastSkeleton = Promise.resolve(null);
    },
    async wouldHaveDropped() {
      const counts = await listAuditCounts(nft);
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
      return (await showTable(nft)) ?? '# table inet dockwarden is not installed\n';
    },
  };
}

/**
 * What differs between a table as read and the plan installed in it, in words; null when nothing.
 * The parse and the comparison give events a turn every few thousand elements (at 10,000 containers
 * each held the event loop 0.1–0.3 s in one piece).
 */
async function compare(table: string, installed: InstalledTable | null, recorded: Recorded, expected: FirewallPlan, changing: ReadonlySet<string> | undefined): Promise<string | null> {
  if (!installed) return `table ${table} is missing`;
  if (recorded === UNREAD) return 'its chains could not be read after the last replace';
  if (installed.foreign.length > 0) return `${installed.foreign.length} element(s) dockwarden did not add`;
  if (!(await sameElementsApart(installed.plan, expected, changing ?? new Set(), nextTurn))) return 'set elements differ from what dockwarden applied';
  if (installed.plan.defaultDeny !== expected.defaultDeny) return 'the fail-closed baseline differs from the policy';
  if (INTERFACE_LISTS.some((list) => installed.plan[list].toSorted().join() !== expected[list].join())) return 'routed or other bridges differ from what dockwarden applied';
  if ((installed.plan.audit ?? false) !== (expected.audit ?? false)) return 'the audit mode differs from the policy';
  if (recorded?.defaultDeny === expected.defaultDeny && recorded.audit === (expected.audit ?? false) && recorded.skeleton !== installed.skeleton) return 'chains or rules were edited';
  return null;
}
