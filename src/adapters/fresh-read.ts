import { performance } from 'node:perf_hooks';

export interface FreshReadOptions {
  /**
   * How long a finished read may answer a caller that only needs one begun after a moment it names
   * (`read(startedAfter)`); 0 (the default): never, every caller gets a read begun after its call.
   * It is dropped after this too, so an idle daemon does not hold it.
   */
  readonly reuseWithinMs?: number;
  /** The clock `startedAfter` is on (Date.now: dockerd's timestamps), and the one ages are measured on. */
  readonly wall?: () => number;
  readonly monotonic?: () => number;
}

/**
 * A read of something the whole host shares (its link dump, its mount table) that many callers need
 * at once, as a reconcile of n containers does: each call resolves with a read that started after the
 * call (nothing that existed at the call is missing), and callers that ask while one runs share the
 * next one, which starts when it ends. A reconcile makes a few reads instead of n.
 *
 * A caller that needs only what existed at an earlier moment (`startedAfter`, wall-clock ms: a
 * container's mounts, made before it started) takes the read running now, or the last one within
 * `reuseWithinMs`, when it began after that moment: a start-up reconcile of containers started before
 * the daemon then makes one read, not one per few containers.
 */
export function freshRead<T>(read: () => Promise<T>, options: FreshReadOptions = {}): (startedAfter?: number) => Promise<T> {
  const { reuseWithinMs = 0, wall = Date.now, monotonic = () => performance.now() } = options;
  let running: { readonly value: Promise<T>; readonly began: number } | null = null;
  let next: Promise<T> | null = null;
  let last: { readonly value: T; readonly began: number; readonly at: number } | null = null;
  let forget: NodeJS.Timeout | undefined;
  const start = (): Promise<T> => {
    const began = wall();
    const at = monotonic();
    const current = read();
    running = { value: current, began };
    void current.then(
      (value) => {
        if (reuseWithinMs <= 0) return;
        last = { value, began, at };
        clearTimeout(forget);
        forget = setTimeout(() => (last = null), reuseWithinMs).unref();
      },
      () => {},
    ).finally(() => {
      if (running?.value === current) running = null;
    });
    return current;
  };
  return (startedAfter) => {
    if (startedAfter !== undefined) {
      if (last !== null && last.began > startedAfter && monotonic() - last.at <= reuseWithinMs) return Promise.resolve(last.value);
      if (running !== null && running.began > startedAfter) return running.value;
    }
    if (running === null) return start();
    return (next ??= running.value.catch(() => {}).then(() => {
      next = null;
      return start();
    }));
  };
}
