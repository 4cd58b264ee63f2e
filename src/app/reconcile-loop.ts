/**
 * One full reconcile at a time. A request while one runs is remembered and runs once more after it
 * (however many came), so a reload or a reconnect during a reconcile is never lost and never doubled.
 * `requestSoon` only marks one as wanted (the event queue overflowed: events were dropped); `tick`,
 * called by the daemon's one-second timer, starts it when none runs.
 */
export class ReconcileLoop {
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;

  constructor(
    private readonly run: (reason: string) => Promise<void>,
    private readonly hooks: {
      readonly done: (reason: string, ms: number) => void;
      readonly failed: (reason: string, error: unknown) => void;
      /** After each reconcile, done or failed (READY / STATUS to systemd). */
      readonly settled: () => void;
    },
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether a reconcile runs now. */
  get busy(): boolean {
    return this.running !== null;
  }

  request(reason: string): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.again = false;
    const started = this.now();
    this.running = this.run(reason)
      .then(() => this.hooks.done(reason, this.now() - started))
      .catch((error: unknown) => this.hooks.failed(reason, error))
      .finally(() => {
        this.running = null;
        if (this.stopped) return;
        this.hooks.settled();
        if (this.again) void this.request('requested again');
      });
    return this.running;
  }

  /** Dropped events: a reconcile is wanted, started by the next `tick` (or runs after the current one). */
  requestSoon(): void {
    this.again = true;
  }

  /** Whether a reconcile is wanted and not yet started. */
  get wanted(): boolean {
    return this.again;
  }

  tick(): void {
    if (this.again && !this.running) void this.request('queue overflow');
  }

  stop(): void {
    this.stopped = true;
  }
}
