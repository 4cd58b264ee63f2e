/** Drift reads outside the queue that overlapped a transaction, before the check waits its turn in the queue. */
const OUT_OF_QUEUE_ATTEMPTS = 3;

/** What a kernel table's enforcer tells the synchroniser (the port firewall's, the bridge filter's). */
export interface SyncedTable {
  /** Writes what changed since the last write: an element update, or a replace when one is due. Runs in the queue. */
  flush(): Promise<void>;
  /**
   * Whether a drift read may run while writes do: the table knows which elements those writes change
   * and leaves them out of the comparison (nftables, where containers are set elements only). Without
   * it, a read runs only while nothing is queued, and one that overlapped any write is redone.
   */
  readsBesideWrites(): boolean;
  /**
   * Starts a drift read outside the queue, or says it cannot prove anything now (null: the kernel's
   * content is unknown or still adopted from an earlier run). The returned read resolves to whether
   * the kernel holds what was written when it started, apart from the keys in `changing`: the table
   * adds those it is writing now, and every key it announces (`changing()`) until the read ends is
   * added for it.
   */
  readHolds(changing: Set<string>): Promise<boolean> | null;
  /** In the queue: compares again, repairs a drift (a replace), and says what differed (null: nothing). */
  repair(): Promise<string | null>;
}

/**
 * The one synchroniser of dockwarden's kernel tables (docs/architecture.md "The firewall and bridge
 * tables"): each table's enforcer keeps its desired state and says how to write and compare it; this
 * runs the writes one at a time and decides when. Changes recorded while a write runs go out together
 * in the next one (a burst of events costs a few transactions, not one per container; a failing
 * table costs one retry sequence, not one per waiting change). A drift check reads the kernel outside
 * the queue, so events go on while a big table is read and compared; "no drift" counts only when no
 * replace ran during the read (and, for a table that cannot read beside writes, no write at all),
 * otherwise (or on a drift seen) the check waits its turn and repairs there.
 */
export class KernelSync {
  private tail: Promise<unknown> = Promise.resolve();
  /** The write queued and not started yet: a new change joins it, since it will take every change recorded by then. */
  private queued: Promise<void> | null = null;
  /** Jobs queued or running. */
  private busy = 0;
  /** Counts jobs started, so a read outside the queue knows whether one ran meanwhile. */
  private generation = 0;
  /** Counts the starts and ends of replaces: a read overlapping any part of one is redone. */
  private replaces = 0;
  /** Of each drift read running outside the queue: the keys changed since it began, which it leaves out. */
  private readonly reads = new Set<Set<string>>();

  constructor(private readonly table: SyncedTable) {}

  /** A change was recorded: it is written with the next write. */
  write(): Promise<void> {
    this.queued ??= this.serially(() => {
      this.queued = null;
      return this.table.flush();
    });
    return this.queued;
  }

  async repairDrift(): Promise<string | null> {
    for (let attempt = 0; attempt < OUT_OF_QUEUE_ATTEMPTS; attempt++) {
      const beside = this.table.readsBesideWrites();
      const generation = this.generation;
      const replaces = this.replaces;
      // A replace running now (an odd count) changes everything: nothing can be proven beside it.
      if ((!beside && this.busy > 0) || replaces % 2 === 1) break;
      const changing = new Set<string>();
      this.reads.add(changing);
      let holds: boolean;
      try {
        const read = this.table.readHolds(changing);
        if (read === null) break;
        holds = await read;
      } finally {
        this.reads.delete(changing);
      }
      if (replaces !== this.replaces || (!beside && generation !== this.generation)) continue;
      if (holds) return null;
      break;
    }
    return this.repairNow();
  }

  /** The kernel is known to differ (our table was deleted): the check and repair in the queue, without a read beside first. */
  repairNow(): Promise<string | null> {
    return this.serially(() => this.table.repair());
  }

  /** The table is about to change these keys (its elements): every drift read running leaves them out. */
  changing(keys: () => Iterable<string>): void {
    if (this.reads.size === 0) return;
    const changed = [...keys()];
    for (const read of this.reads) for (const key of changed) read.add(key);
  }

  /** A whole-table write (a replace), which the table runs from its flush or repair. */
  async replacing<T>(write: () => Promise<T>): Promise<T> {
    this.replaces++;
    try {
      return await write();
    } finally {
      this.replaces++;
    }
  }

  /** Runs `job` after every job before it (and counts it as a write for drift reads). */
  serially<T>(job: () => Promise<T>): Promise<T> {
    this.busy++;
    const result = this.tail.then(() => {
      this.generation++;
      return job();
    }).finally(() => this.busy--);
    this.tail = result.catch(() => {});
    return result;
  }
}
