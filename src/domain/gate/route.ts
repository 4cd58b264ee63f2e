/**
 * Which Docker API requests the authorization gate judges, from the raw `RequestUri` dockerd hands
 * the plugin (docs/architecture.md, "The gate"). The URI is the client's, untrusted and raw: it is
 * percent-decoded and normalised (API version prefix, `.`/`..`, duplicate and trailing slashes,
 * query) before routing, so no spelling of a judged endpoint slips past as "something else".
 */

/** What a request is, as far as the gate is concerned. */
export type GateRoute =
  | { readonly kind: 'create'; readonly name: string | null }
  /** start, restart, unpause: a stored container is about to run. */
  | { readonly kind: 'start'; readonly container: string; readonly legacyBody: boolean }
  | { readonly kind: 'update'; readonly container: string }
  | { readonly kind: 'exec'; readonly container: string }
  | { readonly kind: 'volume-create' }
  /**
   * Managed plugins and swarm services run code the container checks never see; so do image builds:
   * BuildKit runs their steps in containers of its own, with the host's network by default (its
   * `network.host` entitlement), and the classic builder's steps are containers judged only once they run.
   */
  | { readonly kind: 'plugin' | 'service' | 'build'; readonly endpoint: string }
  | { readonly kind: 'other' }
  /** A request to judge whose URI cannot be read: refused. */
  | { readonly kind: 'unreadable'; readonly why: string };

/** The first API version whose start endpoint refuses a body (earlier ones take a HostConfig there). */
const FIRST_VERSION_WITHOUT_START_BODY = [1, 24] as const;
/** dockerd's own bound on a URI is far below this; anything longer is not a request we can judge. */
const MAX_URI_CHARS = 8192;

export interface NormalisedUri {
  /** `1.41` from `/v1.41/…`; null when the client named none (dockerd then uses its current one). */
  readonly version: string | null;
  /** Decoded, `/`-joined, without version, duplicate or trailing slashes, `.` or `..`. */
  readonly path: string;
  readonly query: URLSearchParams;
}

export function normaliseUri(raw: string): NormalisedUri | { readonly error: string } {
  if (raw.length > MAX_URI_CHARS) return { error: `URI longer than ${MAX_URI_CHARS} characters` };
  const at = raw.indexOf('?');
  const rawPath = at === -1 ? raw : raw.slice(0, at);
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { error: 'URI with malformed percent-encoding' };
  }
  if (/[\0-\x1f\x7f]/.test(decoded)) return { error: 'URI with control characters' };
  const segments: string[] = [];
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const version = /^v(\d+(?:\.\d+)*)$/.exec(segments[0] ?? '')?.[1] ?? null;
  if (version !== null) segments.shift();
  return { version, path: `/${segments.join('/')}`, query: new URLSearchParams(at === -1 ? '' : raw.slice(at + 1)) };
}

/** Routes a request; only POST (and PUT, which some clients use for the same endpoints) can create or change. */
export function routeRequest(method: string, rawUri: string): GateRoute {
  if (method !== 'POST' && method !== 'PUT') return { kind: 'other' };
  const uri = normaliseUri(rawUri);
  if ('error' in uri) return { kind: 'unreadable', why: uri.error };
  const { path } = uri;
  if (path === '/containers/create') return { kind: 'create', name: uri.query.get('name') };
  if (path === '/volumes/create') return { kind: 'volume-create' };
  if (path === '/services/create' || /^\/services\/.+\/update$/.test(path)) return { kind: 'service', endpoint: path.startsWith('/services/create') ? 'services/create' : 'services/update' };
  // `/build` (the classic builder, and BuildKit for older clients), `/session` and `/grpc` (BuildKit's
  // own API, which buildx speaks, its options inside a gRPC stream a plugin is never shown).
  if (path === '/build' || path === '/session' || path === '/grpc') return { kind: 'build', endpoint: path.slice(1) };
  if (path === '/plugins/pull' || path === '/plugins/create' || /^\/plugins\/.+\/(enable|upgrade|set)$/.test(path)) return { kind: 'plugin', endpoint: `plugins/${path.split('/').at(-1)}` };
  // Container names may hold `/` (dockerd routes `{name:.*}`): the last segment is the action.
  const container = /^\/containers\/(.+)\/(start|restart|unpause|update|exec)$/.exec(path);
  if (container) {
    const [, id, action] = container as unknown as [string, string, string];
    if (action === 'update') return { kind: 'update', container: id };
    if (action === 'exec') return { kind: 'exec', container: id };
    return { kind: 'start', container: id, legacyBody: action === 'start' && takesStartBody(uri.version) };
  }
  return { kind: 'other' };
}

/**
 * Whether dockerd may, answering this request, change which image a reference names or an image's
 * tags and digests: a tag, untag or delete, a pull, import or load, a push (it adds repo digests), a
 * build (BuildKit's session and gRPC streams included) or a commit. Generous on purpose: a needless
 * yes costs the gate one image look-up, a wrong no would judge a create on the image a name used to
 * name. Reads never change them; a URI that cannot be read might.
 */
export function mayMoveImageNames(method: string, rawUri: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  const uri = normaliseUri(rawUri);
  return 'error' in uri || /^\/(images|build|commit|session|grpc)(\/|$)/i.test(uri.path);
}

/** API versions before 1.24 may carry a HostConfig on start, applied by dockerd 20.10 and earlier. */
function takesStartBody(version: string | null): boolean {
  if (version === null) return false;
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const [firstMajor, firstMinor] = FIRST_VERSION_WITHOUT_START_BODY;
  return major < firstMajor || (major === firstMajor && minor < firstMinor);
}
