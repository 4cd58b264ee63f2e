/**
 * The Docker Engine API over its unix socket: the few calls dockwarden makes, over kept connections
 * (unix-http.ts), and the event stream over `node:http`. It replaces dockerode, whose module graph
 * (docker-modem, ssh2, grpc-js, protobufjs, tar-fs) cost the daemon ~30 MiB of RSS and most of its
 * start-up for features a unix socket never uses (measured: `node -e "require('dockerode')"` 63 MiB
 * against a bare node's 40).
 * Errors carry the engine's HTTP status as `statusCode`, as dockerode's did. Every response body is
 * bounded; every call but the event stream and an explicitly signalled wait has the client's timeout.
 */
import { request, type IncomingMessage } from 'node:http';
import type { ContainerInspect, ExecInspect } from './facts.js';
import { UnixHttpClient, type HttpAnswer } from './unix-http.js';

/** The largest response body read (an inspect with a big seccomp profile is ~1 MiB). */
const MAX_BODY_BYTES = 64 << 20;

export class EngineError extends Error {
  override readonly name = 'EngineError';
  constructor(
    message: string,
    /** The engine's HTTP status; null when no answer came (socket error, timeout, oversized body). */
    readonly statusCode: number | null,
  ) {
    super(message);
  }
}

type Query = Readonly<Record<string, string | number | boolean | object | undefined>>;

interface Call {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly query?: Query;
  readonly body?: unknown;
  /** Replaces the client's timeout (a wait bounded by its own deadline). */
  readonly signal?: AbortSignal;
}

export interface ContainerSummary {
  readonly Id: string;
  readonly Mounts?: ReadonlyArray<{ readonly Source: string }> | null;
}

export interface NetworkSummary {
  readonly Id: string;
  readonly Name: string;
  readonly Options?: Readonly<Record<string, string>> | null;
}

interface ImageInspect {
  readonly RepoTags?: string[] | null;
  readonly RepoDigests?: string[] | null;
}

interface VolumeInspect {
  readonly Options?: Readonly<Record<string, string>> | null;
}

export class EngineClient {
  /** Calls with an answer; the event stream, open for the daemon's life, stays on `node:http`. */
  private readonly http: UnixHttpClient;

  constructor(
    private readonly socketPath: string,
    private readonly timeoutMs: number | null,
  ) {
    this.http = new UnixHttpClient(socketPath, MAX_BODY_BYTES);
  }

  async ping(): Promise<void> {
    await this.call({ method: 'GET', path: '/_ping' });
  }

  /** Newest first; `limit`: that many at most (dockerd stops building the list there). */
  listContainers(all: boolean, limit?: number): Promise<ContainerSummary[]> {
    return this.call({ method: 'GET', path: '/containers/json', query: { all, limit } }) as Promise<ContainerSummary[]>;
  }

  listNetworks(filters: Query): Promise<NetworkSummary[]> {
    return this.call({ method: 'GET', path: '/networks', query: { filters } }) as Promise<NetworkSummary[]>;
  }

  version(): Promise<{ readonly Components?: ReadonlyArray<{ readonly Name?: unknown }> | null }> {
    return this.call({ method: 'GET', path: '/version' }) as Promise<{ Components?: Array<{ Name?: unknown }> | null }>;
  }

  /** A GET this client has no method for (Podman's libpod API); `path` is the caller's constant, never a name. */
  get(path: string): Promise<unknown> {
    return this.call({ method: 'GET', path });
  }

  info(): Promise<{ readonly DockerRootDir: string }> {
    return this.call({ method: 'GET', path: '/info' }) as Promise<{ DockerRootDir: string }>;
  }

  getContainer(id: string) {
    const base = `/containers/${segment(id)}`;
    return {
      inspect: () => this.call({ method: 'GET', path: `${base}/json` }) as Promise<ContainerInspect>,
      update: (body: unknown) => this.call({ method: 'POST', path: `${base}/update`, body }),
      kill: (signal?: string) => this.call({ method: 'POST', path: `${base}/kill`, query: { signal } }),
      /** Until the container is not running, or `signal` aborts. */
      wait: (signal: AbortSignal) => this.call({ method: 'POST', path: `${base}/wait`, query: { condition: 'not-running' }, signal }),
    };
  }

  getExec(id: string) {
    return { inspect: () => this.call({ method: 'GET', path: `/exec/${segment(id)}/json` }) as Promise<ExecInspect> };
  }

  /** `T`: the fields the caller reads (the engine's JSON is trusted for its shape, as everywhere here). */
  getImage(name: string) {
    return { inspect: <T = ImageInspect>() => this.call({ method: 'GET', path: `/images/${segment(name)}/json` }) as Promise<T> };
  }

  getVolume(name: string) {
    return { inspect: <T = VolumeInspect>() => this.call({ method: 'GET', path: `/volumes/${segment(name)}` }) as Promise<T> };
  }

  /** The event stream (JSON lines), open until the engine or the caller ends it: no timeout. */
  events(query: Query): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, method: 'GET', path: withQuery('/events', query) }, (res) => {
        if (res.statusCode === 200) return resolve(res);
        readBody(res).then((text) => reject(httpError(res.statusCode ?? 0, text)), reject);
      });
      req.on('error', (error) => reject(new EngineError(`engine: ${error.message}`, null)));
      req.end();
    });
  }

  private async call({ method, path, query = {}, body, signal }: Call): Promise<unknown> {
    let answer: HttpAnswer;
    try {
      answer = await this.http.request({
        method,
        target: withQuery(path, query),
        ...(body !== undefined && { json: JSON.stringify(body) }),
        // An explicit signal replaces the client's timeout (a wait bounded by its own deadline).
        timeoutMs: signal === undefined ? this.timeoutMs : null,
        ...(signal && { signal }),
      });
    } catch (error) {
      throw new EngineError(`engine: ${method} ${path}: ${(error as Error).message}`, null);
    }
    const { status, contentType, body: text } = answer;
    if (status < 200 || status >= 300) throw httpError(status, text);
    if (text === '') return null; // 204, 304
    if (!/^application\/json\b/.test(contentType)) return text;
    try {
      return JSON.parse(text);
    } catch {
      throw new EngineError(`engine: ${method} ${path} answered invalid JSON`, status);
    }
  }
}

/** One path segment: the engine's names never contain `/`-separated parts we would want to follow. */
function segment(name: string): string {
  return encodeURIComponent(name);
}

function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, typeof value === 'object' ? JSON.stringify(value) : String(value));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        reject(new EngineError(`engine: answer over ${MAX_BODY_BYTES} bytes`, null));
      } else {
        chunks.push(chunk);
      }
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (error) => reject(new EngineError(`engine: ${error.message}`, null)));
  });
}

/** `(HTTP code 404) No such container: …`, with the engine's own message, as dockerode worded it. */
function httpError(status: number, text: string): EngineError {
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // not JSON: the text itself
  }
  return new EngineError(`(HTTP code ${status}) ${message.slice(0, 1000)}`, status);
}
