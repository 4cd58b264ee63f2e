import type { DockerEngine } from '../adapters/docker/engine.js';
import { eventLineSplitter, type DockerEvent } from '../adapters/docker/events.js';

export interface WatcherHooks {
  /** Each container event, in stream order. Must not block: queue the work. */
  onEvent(event: DockerEvent): void;
  /** Subscribed (again): time for a full reconcile. */
  onConnected(reconnect: boolean): void;
  onDisconnected(error: Error, retryInMs: number): void;
  /** A line that could not be read (too long, not an event): whatever it announced is unknown. */
  onBadLine(reason: string): void;
}

export interface WatcherOptions {
  readonly backoffMs: { readonly initial: number; readonly max: number };
  /** How far before the last seen event to replay from after a reconnect. */
  readonly replayOverlapMs: number;
}

/**
 * Keeps one subscription to dockerd's container events alive: subscribe first, then announce the
 * connection (the caller reconciles, so nothing started in the gap is missed); on end or error back
 * off, ping, resubscribe from slightly before the last event, announce again.
 */
export class Watcher {
  private stopped = false;
  private stream: NodeJS.ReadableStream | null = null;
  private lastEventNano: bigint | null = null;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;

  constructor(
    private readonly docker: DockerEngine,
    private readonly hooks: WatcherHooks,
    private readonly options: WatcherOptions,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    destroy(this.stream);
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failures = 0;
    let connectedBefore = false;
    while (!this.stopped) {
      try {
        await this.docker.ping();
        const since = this.lastEventNano === null ? null : this.lastEventNano - BigInt(this.options.replayOverlapMs) * 1_000_000n;
        this.stream = await this.docker.subscribe(since);
        if (this.stopped) break;
        failures = 0;
        this.hooks.onConnected(connectedBefore);
        connectedBefore = true;
        await this.consume(this.stream);
        if (!this.stopped) throw new Error('Docker event stream ended');
      } catch (error) {
        if (this.stopped) break;
        const delay = Math.min(this.options.backoffMs.max, this.options.backoffMs.initial * 2 ** failures++);
        this.hooks.onDisconnected(error as Error, delay);
        await this.sleep(delay);
      } finally {
        // A subscription that completed after stop() was called is ended here, or it holds the process open.
        if (this.stopped) destroy(this.stream);
        this.stream = null;
      }
    }
  }

  private consume(stream: NodeJS.ReadableStream): Promise<void> {
    const feed = eventLineSplitter((event) => {
      this.lastEventNano = event.timeNano;
      this.hooks.onEvent(event);
    }, this.hooks.onBadLine);
    return new Promise((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => feed(chunk));
      stream.once('end', resolve);
      stream.once('close', resolve);
      stream.once('error', reject);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

function destroy(stream: NodeJS.ReadableStream | null): void {
  (stream as { destroy?: () => void } | null)?.destroy?.();
}
