import { readFile, stat } from 'node:fs/promises';

/**
 * A minimal client of the Registry HTTP API v2 (distribution spec) for reading cosign signatures:
 * a manifest by tag, a blob by digest. Anonymous, basic or bearer-token auth (the token flow of
 * `WWW-Authenticate: Bearer realm=…`), with credentials from a Docker `config.json`. Every request has
 * a deadline and every answer a size bound: a registry is a remote party. Credentials never leave this
 * module except in the Authorization header; errors name the registry and the status, nothing else.
 */

export interface RegistryOptions {
  /** Docker config.json (`auths.<registry>.auth` = base64 `user:password`); null: anonymous. */
  readonly authFile: string | null;
  /** `host[:port]` of registries spoken to over plain HTTP. */
  readonly insecure: readonly string[];
  /** Per request. */
  readonly timeoutMs: number;
}

/** The registry answered 404: the tag or blob does not exist. */
export class NotFound extends Error {}

const MAX_MANIFEST_BYTES = 256 * 1024;
const MAX_TOKEN_BYTES = 64 * 1024;
const MAX_AUTH_FILE_BYTES = 1024 * 1024;
const MANIFEST_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');
/** Docker Hub's API host for the `docker.io` of normalised references. */
const DOCKER_HUB_API = 'registry-1.docker.io';
const DOCKER_HUB_AUTH_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

export class RegistryClient {
  /** Bearer tokens by `registry repository`, for the requests after the first. */
  private readonly tokens = new Map<string, string>();

  constructor(private readonly options: RegistryOptions) {}

  /** The manifest `tag` of `registry/path`, its bytes as sent. */
  async manifest(registry: string, path: string, tag: string, maxBytes = MAX_MANIFEST_BYTES): Promise<Buffer> {
    return this.get(registry, path, `/v2/${path}/manifests/${encodeURIComponent(tag)}`, { Accept: MANIFEST_TYPES }, maxBytes);
  }

  /** A blob by digest, its bytes as sent (at most `maxBytes`). */
  async blob(registry: string, path: string, digest: string, maxBytes: number): Promise<Buffer> {
    return this.get(registry, path, `/v2/${path}/blobs/${encodeURIComponent(digest)}`, {}, maxBytes);
  }

  private async get(registry: string, path: string, route: string, headers: Record<string, string>, maxBytes: number): Promise<Buffer> {
    const url = `${this.scheme(registry)}://${registry === 'docker.io' ? DOCKER_HUB_API : registry}${route}`;
    const tokenKey = `${registry} ${path}`;
    const token = this.tokens.get(tokenKey);
    let response = await this.fetch(url, token ? { ...headers, Authorization: `Bearer ${token}` } : headers);
    if (response.status === 401) {
      await response.body?.cancel();
      const authorization = await this.authorize(registry, path, response.headers.get('www-authenticate') ?? '');
      if (authorization.startsWith('Bearer ')) this.tokens.set(tokenKey, authorization.slice('Bearer '.length));
      response = await this.fetch(url, { ...headers, Authorization: authorization });
    }
    if (response.status === 404) {
      await response.body?.cancel();
      throw new NotFound(`${registry}: 404 for ${route}`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`${registry} answered ${response.status} for ${route}`);
    }
    return readBounded(response, maxBytes, `${registry}${route}`);
  }

  private fetch(url: string, headers: Record<string, string>): Promise<Response> {
    return fetch(url, { headers, redirect: 'follow', signal: AbortSignal.timeout(this.options.timeoutMs) });
  }

  private scheme(registry: string): 'http' | 'https' {
    return this.options.insecure.includes(registry) ? 'http' : 'https';
  }

  /** The Authorization for a request the registry refused with 401: basic credentials, or a bearer token got with them. */
  private async authorize(registry: string, path: string, challenge: string): Promise<string> {
    const basic = await this.credentials(registry);
    const scheme = /^\s*(\w+)/.exec(challenge)?.[1]?.toLowerCase();
    if (scheme === 'basic') {
      if (basic === null) throw new Error(`${registry} asks for credentials and images.registry-auth has none for it`);
      return `Basic ${basic}`;
    }
    if (scheme !== 'bearer') throw new Error(`${registry} answered 401 without a usable challenge`);
    const params = challengeParams(challenge);
    const realm = params.get('realm');
    if (realm === undefined) throw new Error(`${registry}: bearer challenge without a realm`);
    const realmUrl = new URL(realm);
    if (realmUrl.protocol !== 'https:' && !(realmUrl.protocol === 'http:' && this.options.insecure.includes(registry))) {
      throw new Error(`${registry}: token realm is not HTTPS`);
    }
    const service = params.get('service');
    if (service !== undefined) realmUrl.searchParams.set('service', service);
    realmUrl.searchParams.set('scope', params.get('scope') ?? `repository:${path}:pull`);
    const response = await this.fetch(realmUrl.toString(), basic === null ? {} : { Authorization: `Basic ${basic}` });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new Error(`${registry}: the token service answered ${response.status}`);
    }
    const answer = JSON.parse((await readBounded(response, MAX_TOKEN_BYTES, `${registry} token`)).toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = typeof answer.token === 'string' ? answer.token : answer.access_token;
    if (typeof token !== 'string' || token === '') throw new Error(`${registry}: the token service answered no token`);
    return `Bearer ${token}`;
  }

  /** base64 `user:password` for the registry from the auth file, read afresh (the admin may rotate it); null when none. */
  private async credentials(registry: string): Promise<string | null> {
    if (this.options.authFile === null) return null;
    // Off the event loop, and only a regular file of bounded size (a FIFO or a device would never end).
    const info = await stat(this.options.authFile);
    if (!info.isFile() || info.size > MAX_AUTH_FILE_BYTES) throw new Error(`images.registry-auth is not a regular file of at most ${MAX_AUTH_FILE_BYTES} bytes`);
    const bytes = await readFile(this.options.authFile);
    const auths = (JSON.parse(bytes.toString('utf8')) as { auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown }> }).auths ?? {};
    const keys = registry === 'docker.io' ? DOCKER_HUB_AUTH_KEYS : [registry, `https://${registry}`, `http://${registry}`];
    for (const key of keys) {
      const entry = Object.hasOwn(auths, key) ? auths[key] : undefined;
      if (typeof entry?.auth === 'string' && entry.auth !== '') return entry.auth;
      if (typeof entry?.username === 'string' && typeof entry.password === 'string') return Buffer.from(`${entry.username}:${entry.password}`).toString('base64');
    }
    return null;
  }
}

/** `Bearer realm="…",service="…",scope="…"` → its parameters. */
function challengeParams(challenge: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const m of challenge.matchAll(/(\w+)="([^"]*)"/g)) params.set(m[1]!.toLowerCase(), m[2]!);
  return params;
}

/** The body, refused past `maxBytes` (by its declared length first, then as it streams). */
async function readBounded(response: Response, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new Error(`${what}: answer of ${declared} bytes, more than ${maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response.body ?? []) {
    length += (chunk as Uint8Array).length;
    if (length > maxBytes) throw new Error(`${what}: answer longer than ${maxBytes} bytes`);
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}
