import type { PolicyResult } from '../domain/policy/result.js';

export interface PolicyReloaderOptions {
  /** Reads and validates the file (in a worker: the event loop keeps judging containers meanwhile). */
  readonly read: () => Promise<PolicyResult>;
  /** A valid policy that differs from the one in force. */
  readonly accepted: (result: Extract<PolicyResult, { ok: true }>) => Promise<void>;
  /** An invalid one: `fresh` is false when the same file gave the same errors last time (a file event and a SIGHUP for one edit). */
  readonly rejected: (result: Extract<PolicyResult, { ok: false }>, fresh: boolean) => void;
  /** The hash of the policy in force. */
  readonly currentHash: () => string;
  /** What identifies this version of the file (inode, size, mtime). */
  readonly fileVersion: () => string;
  /** File events closer together than this are one edit. */
  readonly debounceMs: number;
  readonly schedule?: (run: () => void, ms: number) => () => void;
}

/**
 * Policy reloads: on SIGHUP (`reload`) and on file events (`fileChanged`, debounced: editors and
 * config management replace a file in several steps). One read at a time; a request during one
 * reads once more after it. A rejected edit is reported once, not once per attempt.
 */
export class PolicyReloader {
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private lastRejected: string | null = null;
  private cancelDebounce: (() => void) | null = null;
  private stopped = false;
  private readonly schedule: NonNullable<PolicyReloaderOptions['schedule']>;

  constructor(private readonly options: PolicyReloaderOptions) {
    this.schedule = options.schedule ?? ((run, ms) => {
      const timer = setTimeout(run, ms);
      return () => clearTimeout(timer);
    });
  }

  fileChanged(): void {
    if (this.stopped) return;
    this.cancelDebounce?.();
    this.cancelDebounce = this.schedule(() => {
      this.cancelDebounce = null;
      void this.reload();
    }, this.options.debounceMs);
  }

  reload(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.readAgain = false;
    this.reading = this.options
      .read()
      .then((result) => this.settle(result))
      .finally(() => {
        this.reading = null;
        if (this.readAgain && !this.stopped) void this.reload();
      });
    return this.reading;
  }

  stop(): void {
    this.stopped = true;
    this.cancelDebounce?.();
  }

  private async settle(result: PolicyResult): Promise<void> {
    if (this.stopped) return;
    if (!result.ok) {
      const rejection = `${this.options.fileVersion()} ${JSON.stringify(result.errors)}`;
      this.options.rejected(result, rejection !== this.lastRejected);
      this.lastRejected = rejection;
      return;
    }
    this.lastRejected = null;
    if (result.policy.hash === this.options.currentHash()) return;
    await this.options.accepted(result);
  }
}
