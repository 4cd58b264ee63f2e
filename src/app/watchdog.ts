/**
 * Whether the daemon may tell systemd's watchdog it is alive. A timer firing proves the event loop
 * turns; that is not enough: a container task wedged forever (a hung engine call past every deadline)
 * would leave the loop turning while nothing gets judged. So a ping is withheld once queued work has
 * made no progress for `stuckAfterMs`; an empty queue is progress.
 */
export class ProgressWatchdog {
  private lastDone = -1;
  private lastProgress: number;

  constructor(
    private readonly stuckAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.lastProgress = now();
  }

  /** `done`: tasks finished (or failed) so far; `idle`: nothing queued. True when the ping may go. */
  alive(done: number, idle: boolean): boolean {
    if (done !== this.lastDone || idle) {
      this.lastDone = done;
      this.lastProgress = this.now();
    }
    return this.now() - this.lastProgress < this.stuckAfterMs;
  }
}
