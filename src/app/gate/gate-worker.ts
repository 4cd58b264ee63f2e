import type { Server } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { serveAuthz, type AuthzAnswer, type AuthzRequest } from '../../adapters/gate/authz-server.js';
import { mayMoveImageNames, routeRequest } from '../../domain/gate/route.js';

/**
 * The gate's front, in a worker thread of its own (gate-setup.ts starts it): it serves the plugin
 * protocol and answers at once what needs no judgement — a request on no judged endpoint, and the
 * response phase — so that those never wait on the daemon's event loop, which judges every
 * container the engine reports. dockerd asks about every API call twice (the `docker create` an
 * admin types is four or more calls: its own, and the daemon's inspections of what it created),
 * and waited there for most of what the gate cost it (README, the gate, "What it costs").
 *
 * The rest goes to the daemon's thread, in the order it came, as `ToJudge` messages: the requests
 * to judge, and every request and answer that may move image names (the daemon's image look-ups
 * must see those before any create asked about after them: gate/image-lookups.ts).
 */

export interface FrontOptions {
  readonly listen: { readonly path: string } | { readonly fd: number };
  readonly timeoutMs: number;
}

/** Front → daemon. */
export type ToJudge =
  | { readonly type: 'listening' }
  | { readonly type: 'cannot-listen'; readonly message: string }
  | { readonly type: 'decide'; readonly id: number; readonly method: string; readonly uri: string; readonly body: Uint8Array }
  | { readonly type: 'answered'; readonly request: { readonly method: string; readonly uri: string } | null }
  | { readonly type: 'failure'; readonly reason: string; readonly uri: string | null; readonly error?: string }
  /** One decision made, timed here from the request read to the answer (`route` null: it failed). */
  | { readonly type: 'decided'; readonly route: string | null; readonly allow: boolean; readonly seconds: number };

/** Daemon → front. */
export type FromJudge =
  | { readonly type: 'verdict'; readonly id: number; readonly route: string; readonly allow: boolean; readonly msg: string }
  | { readonly type: 'verdict-failed'; readonly id: number; readonly error: string }
  | { readonly type: 'close' };

const port = parentPort!;
const post = (message: ToJudge, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
const pending = new Map<number, { resolve: (answer: AuthzAnswer & { route: string }) => void; reject: (error: Error) => void }>();
let nextId = 0;
let server: Server | null = null;

/** Asks the daemon's thread; the protocol server's own bound (`timeoutMs`) limits the wait. */
function judged(request: AuthzRequest): Promise<AuthzAnswer & { route: string }> {
  const id = nextId++;
  // A copy of its own: the request's buffer may be a slice of a pool that must not be detached.
  const body = new Uint8Array(request.body.length);
  body.set(request.body);
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    post({ type: 'decide', id, method: request.method, uri: request.uri, body }, [body.buffer]);
  });
}

async function decide(request: AuthzRequest): Promise<AuthzAnswer> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const answer = routeRequest(request.method, request.uri).kind === 'other' && !mayMoveImageNames(request.method, request.uri)
      ? { allow: true, msg: '', route: 'other' }
      : await judged(request);
    post({ type: 'decided', route: answer.route, allow: answer.allow, seconds: seconds() });
    return answer;
  } catch (error) {
    post({ type: 'decided', route: null, allow: false, seconds: seconds() });
    throw error;
  }
}

port.on('message', (message: FromJudge) => {
  if (message.type === 'close') {
    server?.close();
    server?.closeAllConnections();
    port.close();
    return;
  }
  const waiting = pending.get(message.id);
  pending.delete(message.id);
  if (message.type === 'verdict') waiting?.resolve({ allow: message.allow, msg: message.msg, route: message.route });
  else waiting?.reject(new Error(message.error));
});

const options = workerData as FrontOptions;
server = await serveAuthz({
  listen: options.listen,
  timeoutMs: options.timeoutMs,
  decide,
  answered: (request) => {
    if (request === null || mayMoveImageNames(request.method, request.uri)) post({ type: 'answered', request });
  },
  onFailure: ({ reason, uri, error }) => {
    // A decision that timed out is answered; its verdict, if it ever comes, has no one to go to.
    post({ type: 'failure', reason, uri, ...(error === undefined ? {} : { error: error instanceof Error ? error.message : String(error) }) });
  },
}).catch((error: unknown) => {
  post({ type: 'cannot-listen', message: error instanceof Error ? error.message : String(error) });
  port.close();
  return null;
});
if (server !== null) post({ type: 'listening' });
