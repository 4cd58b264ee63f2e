import { createHash } from 'node:crypto';

/**
 * Containers whose create the gate judged and found clean (no violation at all), for the event path:
 * their `create` event needs no second judgement. On a gated host that second judgement is an inspect
 * and an image look-up, each asked of the gate twice, while dockerd is answering the create's client:
 * most of what the gate added to a `docker create` beyond the protocol itself (README, the gate's
 * cost). Nothing runs in a created container; it is judged again before it runs (the gate's start
 * waits for the daemon's own sync, which makes its directories and relabels its volumes), when it runs
 * (its `start` event) and at every reconcile. A create with any violation, even one only alerted, is
 * judged at its event as without the gate, so its alert comes when it appears.
 *
 * dockerd's answer to a create carries the create request as it asked about it, so an answer is
 * matched to the decision it follows. The `create` event and that answer come at about the same
 * moment, in either order: an event whose container is not known yet waits while a create allowed
 * here is unanswered, at most `WAIT_MS` — dockerd sends no answer for a create that failed.
 */
export interface GateCreates {
  /** The gate allowed this create; `clean`: it found no violation. */
  allowed(request: CreateRequest, clean: boolean): void;
  /** dockerd sent the gate this create's answer: the container it made, or null (it failed, or the answer was unreadable). */
  answered(request: CreateRequest, id: string | null): void;
  /** Whether the gate judged this container clean at its create (told once: it is forgotten here). */
  judgedAtCreate(id: string): Promise<boolean>;
}

export interface CreateRequest {
  readonly uri: string;
  readonly body: Buffer;
}

export const WAIT_MS = 1_000;
/** Creates followed at most; past it one more is not (its event is judged, as without the gate). */
const MAX_PENDING = 1024;
/** Ids whose `create` event has not come (the event stream was down): kept this long, this many at most. */
const KEEP_MS = 60_000;
const MAX_KEPT = 1024;

export function gateCreates(now: () => number = Date.now): GateCreates {
  /** Creates allowed here and not answered yet, oldest first. */
  const pending: Array<{ readonly key: string; readonly at: number; readonly clean: boolean }> = [];
  const made = new Map<string, number>();
  let wake: Array<() => void> = [];
  const changed = (): void => {
    const waiting = wake;
    wake = [];
    for (const w of waiting) w();
  };
  const prune = (): void => {
    while (pending.length > 0 && now() - pending[0]!.at >= WAIT_MS) pending.shift();
  };
  const keyOf = ({ uri, body }: CreateRequest): string => createHash('sha256').update(uri).update('\0').update(body).digest('hex');
  return {
    allowed(request, clean) {
      prune();
      if (pending.length < MAX_PENDING) pending.push({ key: keyOf(request), at: now(), clean });
    },
    answered(request, id) {
      prune();
      const key = keyOf(request);
      const at = pending.findIndex((p) => p.key === key);
      if (at === -1) return; // allowed before this daemon started, too long ago, or not followed
      const [create] = pending.splice(at, 1);
      if (create!.clean && id !== null) {
        made.set(id, now());
        for (const [old, when] of made) {
          if (made.size <= MAX_KEPT && now() - when < KEEP_MS) break;
          made.delete(old);
        }
      }
      changed();
    },
    async judgedAtCreate(id) {
      const since = now();
      for (;;) {
        if (made.delete(id)) return true;
        prune();
        const left = WAIT_MS - (now() - since);
        if (pending.length === 0 || left <= 0) return false;
        const timer = setTimeout(changed, Math.min(left, WAIT_MS - (now() - pending[0]!.at)));
        await new Promise<void>((resolve) => wake.push(resolve));
        clearTimeout(timer);
      }
    },
  };
}
