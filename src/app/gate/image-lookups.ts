import { mayMoveImageNames } from '../../domain/gate/route.js';
import type { GateEngine } from './judge-request.js';

type GateImage = Awaited<ReturnType<GateEngine['inspectImage']>>;

/**
 * The gate's image look-ups (a create's reference → the image it names), kept while nothing can have
 * moved a name: each look-up through dockerd passes the gate itself, twice, and was most of a
 * create's decision. A kept answer is used only while
 * - the engine's event stream is up (when it is down, or just back, changes may have gone unseen),
 * - no request that may move image names is in flight (dockerd asked about it and has not answered:
 *   it may be moving them now), and
 * - nothing was seen since the look-up began: such a request asked about or answered (dockerd has
 *   acted by the time it sends the answer to us, before the client sees it), an image event (what
 *   moves names without an API request, e.g. a swarm task's pull), an unreadable event line.
 * Otherwise — a miss, any doubt — dockerd is asked, as without the cache. An answer is also trusted
 * for `TRUST_MS` at most.
 */
export interface GateImages {
  inspect(reference: string): Promise<GateImage>;
  /** dockerd asked the gate about a request and was told it may go ahead (it has not acted yet). */
  requestAllowed(method: string, uri: string): void;
  /** dockerd sent the gate a request's answer (it has acted; the client has not seen the answer yet). */
  requestAnswered(method: string, uri: string): void;
  /** An image event, or an event line that could not be read. */
  imagesMayHaveChanged(): void;
  /** The engine's event stream (re)connected (events may have been missed meanwhile) or was lost. */
  watching(connected: boolean): void;
}

/**
 * Below read-facts' 30 s for an image's tags by id: a create judged from here finds its image's tags
 * there, read no earlier than this look-up (rememberImage), so judging it asks dockerd nothing more.
 */
export const TRUST_MS = 15_000;
/** References kept; the oldest go first. A reference longer than dockerd's own bound is never kept. */
const MAX_KEPT = 256;
const MAX_REFERENCE_CHARS = 512;
/** Requests in flight followed at most; past it the cache stays off (they may never be answered to us). */
const MAX_IN_FLIGHT = 1024;

export function gateImages(lookUp: (reference: string) => Promise<GateImage>, now: () => number = Date.now): GateImages {
  const kept = new Map<string, { readonly image: NonNullable<GateImage>; readonly at: number }>();
  /** Requests that may move image names, asked about and not answered, by method and URI. */
  const inFlight = new Map<string, number>();
  let overflowed = false;
  let connected = false;
  /** Bumped at every sign of change: a look-up that began before one is not kept. */
  let generation = 0;
  const forget = (): void => {
    generation++;
    kept.clear();
  };
  const trusted = (): boolean => connected && inFlight.size === 0 && !overflowed;
  return {
    async inspect(reference) {
      const hit = trusted() ? kept.get(reference) : undefined;
      if (hit !== undefined && now() - hit.at < TRUST_MS) return hit.image;
      const began = { generation, at: now() };
      const image = await lookUp(reference);
      if (image !== null && generation === began.generation && trusted() && reference.length <= MAX_REFERENCE_CHARS) {
        kept.delete(reference); // re-inserted last: iteration order is oldest first
        kept.set(reference, { image, at: began.at });
        if (kept.size > MAX_KEPT) kept.delete(kept.keys().next().value!);
      }
      return image;
    },
    requestAllowed(method, uri) {
      if (!mayMoveImageNames(method, uri)) return;
      forget();
      const key = `${method} ${uri}`;
      if (!inFlight.has(key) && inFlight.size >= MAX_IN_FLIGHT) overflowed = true;
      else inFlight.set(key, (inFlight.get(key) ?? 0) + 1);
    },
    requestAnswered(method, uri) {
      if (!mayMoveImageNames(method, uri)) return;
      forget();
      // One asked about before this daemon started is answered without having been seen: nothing to end.
      const key = `${method} ${uri}`;
      const open = inFlight.get(key);
      if (open === undefined) return;
      if (open > 1) inFlight.set(key, open - 1);
      else inFlight.delete(key);
    },
    imagesMayHaveChanged: forget,
    watching(isConnected) {
      connected = isConnected;
      forget();
    },
  };
}
