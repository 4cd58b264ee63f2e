import type { Logger } from 'pino';
import type { Alert, AlertSeverity } from '../../domain/alerts/alert.js';
import type { DiskQueue } from './disk-queue.js';

/** Delivers one record to one outside receiver; rejects when it did not arrive. Never logs secrets. */
export interface SinkTransport {
  deliver(alert: Alert): Promise<void>;
  close(): void;
}

export interface Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 500, maxMs: 60_000 };

/**
 * A sink behind its own disk queue: records go out one at a time, oldest first; a failure is retried
 * with exponential backoff and jitter (half to full of the step, so sinks that failed together do not
 * retry in lockstep), forever: a record leaves the queue only when delivered or pushed out by the bound.
 * Delivery is at-least-once (a crash between delivery and removal resends): receivers dedupe by id.
 */
export class QueuedSink {
  private running = false;
  private closed = false;
  private wake: (() => void) | null = null;
  private idleWaiters: Array<() => void> = [];
  failures = 0;
  delivered = 0;

  constructor(
    readonly name: string,
    readonly minSeverity: AlertSeverity,
    readonly queue: DiskQueue,
    private readonly transport: SinkTransport,
    private readonly log: Logger,
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
  ) {}

  /** Stores the record and starts delivery; returns how many older records the bound dropped. */
  push(alert: Alert): number {
    const dropped = this.queue.push(alert);
    this.start();
    return dropped;
  }

  /** Delivers what an earlier run left queued. */
  start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.run();
  }

  /** Resolves when the queue is empty (or the sink closed). */
  idle(): Promise<void> {
    if (this.queue.size === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    this.wake?.();
    this.transport.close();
    this.settleIdle();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    for (let alert = this.queue.oldest(); alert && !this.closed; alert = this.queue.oldest()) {
      try {
        await this.transport.deliver(alert);
        this.queue.remove(alert.id);
        this.delivered++;
        attempt = 0;
      } catch (error) {
        this.failures++;
        const step = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** attempt++);
        const delay = Math.round(step * (0.5 + Math.random() / 2));
        this.log.warn({ sink: this.name, alert: { id: alert.id }, err: error, retryInMs: delay, queued: this.queue.size }, 'alert delivery failed; retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          timer.unref();
          this.wake = () => (clearTimeout(timer), resolve());
        });
        this.wake = null;
      }
    }
    this.running = false;
    this.settleIdle();
  }

  private settleIdle(): void {
    if (this.queue.size > 0 && !this.closed) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
