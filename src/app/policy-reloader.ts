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
  /** What identifies this version of the file (inode, size, mtime); taken before and after each read. */
  readonly fileVersion: () => string;
  /** File events closer together than this are one edit. */
  readonly debounceMs: number;
  readonly schedule?: (run: () => void, ms: number) => () => void;
}

/**
 * A read during which the file changed is read again, up to this many times in a row; then what was
 * read is judged as it is (a file rewritten without pause still gets an answer).
 */
const MAX_REREADS_OF_A_CHANGING_FILE = 5;

/**
 * Policy reloads: on SIGHUP (`reload`) and on file events (`fileChanged`, debounced: editors and
 * config management replace a file in several steps). One read at a time; a request during one
 * reads once more after it. Only a read the file stood still for is judged: a write that truncates
 * and then writes (`>`, most programs' plain write) can be caught half done, and its empty or cut
 * text is not the admin's edit, to be neither alerted on nor put in force. A rejected edit is
 * reported once, not once per attempt.
 */
export class PolicyReloader {
  private reading: Promise<void> | null = null;
  private readAgain = false;
  private lastRejected: string | null = null;
  private rereads = 0;
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
    const before = this.options.fileVersion();
    this.reading = this.options
      .read()
      .then((result) => {
        const after = this.options.fileVersion();
        if (after !== before && this.rereads < MAX_REREADS_OF_A_CHANGING_FILE) {
          this.rereads += 1;
          this.readAgain = true;
          return;
        }
        this.rereads = 0;
        return this.settle(result, after);
      })
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

  private async settle(result: PolicyResult, version: string): Promise<void> {
    if (this.stopped) return;
    if (!result.ok) {
      const rejection = `${version} ${JSON.stringify(result.errors)}`;
      this.options.rejected(result, rejection !== this.lastRejected);
      this.lastRejected = rejection;
      return;
    }
    this.lastRejected = null;
    if (result.policy.hash === this.options.currentHash()) return;
    await this.options.accepted(result);
  }
}
