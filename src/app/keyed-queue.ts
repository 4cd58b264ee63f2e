/**
 * Work queue for Docker events: tasks with the same key (a container id) run one at a time in the
 * order pushed; different keys run in parallel up to `concurrency`. `push` never blocks, so the event
 * stream is never paused (dockerd drops subscribers that lag). When `capacity` pending tasks are
 * waiting, new ones are dropped and counted, and `onOverflow` fires so the caller can schedule a full
 * reconcile, which is the source of truth anyway.
 */
export interface QueueCounters {
  enqueued: number;
  coalesced: number;
  dropped: number;
  completed: number;
  failed: number;
}

export interface KeyedQueueOptions {
  readonly concurrency: number;
  readonly capacity: number;
  readonly onError: (key: string, kind: string, error: unknown) => void;
  readonly onOverflow: () => void;
}

interface Task {
  readonly kind: string;
  readonly run: () => Promise<void>;
  readonly done: Array<() => void>;
}

export class KeyedQueue {
  readonly counters: QueueCounters = { enqueued: 0, coalesced: 0, dropped: 0, completed: 0, failed: 0 };
  private readonly pendingByKey = new Map<string, Task[]>();
  private readonly runnable: string[] = [];
  private readonly busyKeys = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];
  private pending = 0;

  constructor(private readonly options: KeyedQueueOptions) {
    if (!(options.concurrency >= 1) || !(options.capacity >= 1)) throw new RangeError('concurrency and capacity must be ≥ 1');
  }

  /** Tasks waiting or running. */
  get depth(): number {
    return this.pending + this.busyKeys.size;
  }

  /**
   * Queues `run` under `key`. A task of the same `kind` already waiting (not running) for that key
   * absorbs this one: the work is idempotent ("look at container X again"), so once is enough.
   * Resolves when the task (or the one that absorbed it) has finished; never rejects.
   */
  push(key: string, kind: string, run: () => Promise<void>): Promise<void> {
    return new Promise((resolve) => {
      const tasks = this.pendingByKey.get(key) ?? [];
      const last = tasks.at(-1);
      if (last?.kind === kind) {
        this.counters.coalesced++;
        last.done.push(resolve);
        return;
      }
      if (this.pending >= this.options.capacity) {
        this.counters.dropped++;
        this.options.onOverflow();
        resolve();
        return;
      }
      tasks.push({ kind, run, done: [resolve] });
      this.pendingByKey.set(key, tasks);
      this.pending++;
      this.counters.enqueued++;
      if (tasks.length === 1 && !this.busyKeys.has(key)) this.runnable.push(key);
      this.pump();
    });
  }

  /** Resolves once nothing is waiting or running. */
  idle(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.busyKeys.size < this.options.concurrency && this.runnable.length > 0) {
      const key = this.runnable.shift()!;
      const tasks = this.pendingByKey.get(key)!;
      const task = tasks.shift()!;
      if (tasks.length === 0) this.pendingByKey.delete(key);
      this.pending--;
      this.busyKeys.add(key);
      void this.execute(key, task);
    }
    if (this.depth === 0) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private async execute(key: string, task: Task): Promise<void> {
    try {
      await task.run();
      this.counters.completed++;
    } catch (error) {
      this.counters.failed++;
      this.options.onError(key, task.kind, error);
    }
    this.busyKeys.delete(key);
    if (this.pendingByKey.has(key)) this.runnable.push(key);
    for (const resolve of task.done) resolve();
    this.pump();
  }
}
