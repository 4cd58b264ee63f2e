import { mkdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname } from 'node:path';

/**
 * Docker's authorization plugin protocol over a unix socket (docs/architecture.md, "The gate"):
 * `POST /Plugin.Activate` → `{"Implements":["authz"]}`; `POST /AuthZPlugin.AuthZReq` with dockerd's
 * request (`RequestMethod`, `RequestUri`, `RequestBody` base64) → `{"Allow","Msg"}`;
 * `POST /AuthZPlugin.AuthZRes` (dockerd has acted; its client waits for this answer) → allowed: the
 * gate decides before dockerd acts, not after, and is only told which request was answered.
 * Every answer comes within `timeoutMs`: dockerd waits on us for every API call of every client.
 */

export interface AuthzRequest {
  readonly method: string;
  readonly uri: string;
  readonly body: Buffer;
  readonly user: string;
}

export interface AuthzAnswer {
  readonly allow: boolean;
  readonly msg: string;
}

export interface AuthzServerOptions {
  /** Where to listen: a socket path (made afresh), or a socket systemd passed in (socket activation). */
  readonly listen: { readonly path: string } | { readonly fd: number };
  readonly decide: (request: AuthzRequest) => Promise<AuthzAnswer>;
  /** An answer not ready by then is a refusal: the client gets an error, never a hang. */
  readonly timeoutMs: number;
  /**
   * Told, before the answer goes back, that dockerd has acted on this request (null: a response
   * message that could not be read, so any request).
   */
  readonly answered?: (request: Pick<AuthzRequest, 'method' | 'uri'> | null) => void;
  /** Told of a request that could not be judged (bad protocol message, error, timeout): log and alert. */
  readonly onFailure: (failure: { readonly reason: string; readonly uri: string | null; readonly error?: unknown }) => void;
}

/** dockerd forwards at most 4 MiB of body (1 MiB before 29.3.1), base64 inside JSON: 8 MiB bounds the message. */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
const PLUGIN_MEDIA_TYPE = 'application/vnd.docker.plugins.v1.2+json';

export async function serveAuthz(options: AuthzServerOptions): Promise<Server> {
  const server = createServer((req, res) => void handle(req, res, options));
  // Keep-alive connections from dockerd stay open across requests; do not let them pin a shutdown.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('fd' in options.listen) server.listen({ fd: options.listen.fd }, resolve);
    else {
      mkdirSync(dirname(options.listen.path), { recursive: true, mode: 0o755 });
      rmSync(options.listen.path, { force: true }); // a socket file left by a previous run
      server.listen(options.listen.path, resolve);
    }
  });
  return server;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AuthzServerOptions): Promise<void> {
  const reply = (status: number, body: unknown): void => {
    if (res.headersSent) return;
    res.writeHead(status, { 'content-type': PLUGIN_MEDIA_TYPE });
    res.end(JSON.stringify(body));
  };
  const refuse = (msg: string) => reply(200, { Allow: false, Msg: msg });
  if (req.method !== 'POST') return reply(405, { Err: 'POST only' });
  const message = await readMessage(req);
  if (req.url === '/Plugin.Activate') return reply(200, { Implements: ['authz'] });
  if (req.url === '/AuthZPlugin.AuthZRes') {
    options.answered?.(message === null ? null : requestLineOf(message));
    return reply(200, { Allow: true });
  }
  if (req.url !== '/AuthZPlugin.AuthZReq') return reply(404, { Err: `unknown endpoint ${req.url ?? ''}` });
  const request = message === null ? null : decodeRequest(message);
  if (request === null) {
    options.onFailure({ reason: 'unreadable authorization request', uri: null });
    return refuse('dockwarden could not read the authorization request; refused');
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), options.timeoutMs)));
  try {
    const answer = await Promise.race([options.decide(request), timeout]);
    if (answer === 'timeout') {
      options.onFailure({ reason: `no decision within ${options.timeoutMs} ms`, uri: request.uri });
      return refuse(`dockwarden could not judge this request within ${options.timeoutMs} ms; refused (see its log)`);
    }
    return reply(200, { Allow: answer.allow, ...(answer.allow ? {} : { Msg: answer.msg }) });
  } catch (error) {
    options.onFailure({ reason: 'error while judging', uri: request.uri, error });
    return refuse('dockwarden could not judge this request (internal error, see its log); refused');
  } finally {
    clearTimeout(timer);
  }
}

/** The message body, or null when it is larger than any real one or the connection broke. */
function readMessage(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_MESSAGE_BYTES) {
        resolve(null);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(null));
  });
}

/** How much of a response-phase message is looked at for the request it answers. */
const HEAD_BYTES = 16 * 1024;
/** One `"key": "string"` member followed by another member. */
const STRING_MEMBER = /\s*("(?:[^"\\]|\\.)*")\s*:\s*("(?:[^"\\]|\\.)*")\s*,/y;

/**
 * `RequestMethod` and `RequestUri` of a response-phase message without parsing the two bodies it
 * also carries (up to 4 MiB each, base64): Go encodes a struct's fields in order, and dockerd's
 * request fields come first, so they are read from the head while it is a run of string members.
 * Anything else there (another encoder, an odd message) is read whole.
 */
export function requestLineOf(message: Buffer): Pick<AuthzRequest, 'method' | 'uri'> | null {
  const head = message.subarray(0, HEAD_BYTES).toString('utf8');
  const open = /^\s*\{/.exec(head);
  let method: unknown;
  let uri: unknown;
  const seen = new Set<unknown>();
  STRING_MEMBER.lastIndex = open === null ? head.length : open[0].length;
  try {
    for (let member = STRING_MEMBER.exec(head); member !== null; member = STRING_MEMBER.exec(head)) {
      const key: unknown = JSON.parse(member[1]!);
      if (seen.has(key)) break; // a repeated key: the whole message says which one counts
      seen.add(key);
      if (key === 'RequestMethod') method = JSON.parse(member[2]!);
      if (key === 'RequestUri') uri = JSON.parse(member[2]!);
      if (typeof method === 'string' && typeof uri === 'string') return { method, uri };
    }
  } catch {
    // Not JSON after all: read whole below.
  }
  const whole = decodeRequest(message);
  return whole && { method: whole.method, uri: whole.uri };
}

/** dockerd's `authorization.Request`: `RequestBody` is Go `[]byte`, so base64 in JSON. */
function decodeRequest(message: Buffer): AuthzRequest | null {
  let raw: unknown;
  try {
    raw = JSON.parse(message.toString('utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { RequestMethod, RequestUri, RequestBody, User } = raw as Record<string, unknown>;
  if (typeof RequestMethod !== 'string' || typeof RequestUri !== 'string') return null;
  if (RequestBody !== undefined && RequestBody !== null && (typeof RequestBody !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(RequestBody))) return null;
  return {
    method: RequestMethod,
    uri: RequestUri,
    body: typeof RequestBody === 'string' ? Buffer.from(RequestBody, 'base64') : Buffer.alloc(0),
    user: typeof User === 'string' ? User : '',
  };
}
