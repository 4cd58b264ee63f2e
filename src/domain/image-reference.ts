/**
 * Docker image references, parsed and normalised as Docker does (distribution/reference
 * `ParseNormalizedNamed` + `TagNameOnly`): `nginx` → `docker.io/library/nginx:latest`.
 * The grammar below is the one distribution/reference documents.
 */
export interface ImageReference {
  /** `docker.io`, `registry.example.com:5000`, `[::1]:5000`, `localhost`. */
  readonly registry: string;
  /** Repository path without the registry: `library/nginx`, `team/app`. */
  readonly path: string;
  /** The tag; `latest` when neither tag nor digest was given; undefined for a digest-only reference. */
  readonly tag: string | undefined;
  /** `algorithm:hex`, when given. */
  readonly digest: string | undefined;
  /** A Docker Hub official image (`docker.io/library/<name>`). */
  readonly official: boolean;
  /** `registry/path[:tag][@digest]`. */
  readonly normalised: string;
  /** What the docker CLI shows: `nginx:latest`, `user/app:1`, `quay.io/x/y@sha256:…`. */
  readonly familiar: string;
}

export type ImageReferenceResult = { readonly ok: true; readonly ref: ImageReference } | { readonly ok: false; readonly error: string };

const DEFAULT_REGISTRY = 'docker.io';
/** The Docker Index's old name, canonicalised to docker.io (registry-1.docker.io is not). */
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';
const MAX_PATH_LENGTH = 255;

const alphanumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|-+)';
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`;
const remoteName = `${pathComponent}(?:/${pathComponent})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[[a-fA-F0-9:]+\\])`;
const tag = '[\\w][\\w.-]{0,127}';
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const REGISTRY = new RegExp(`^${host}(?::[0-9]+)?$`);
const REMAINDER = new RegExp(`^(${remoteName})(?::(${tag}))?(?:@(${digest}))?$`);
/** A full image id or a prefix of one, with or without `sha256:`: what dockerd's image store looks up by id. */
const IMAGE_ID_OR_PREFIX = /^(?:sha256:)?([a-f0-9]{1,64})$/;
const IMAGE_ID_LENGTH = 64;

/** Hex lengths of the digest algorithms dockerd accepts (go-digest with sha256 and sha512 registered). */
const DIGEST_HEX_LENGTH: ReadonlyMap<string, number> = new Map([['sha256', 64], ['sha384', 96], ['sha512', 128]]);

export function parseImageReference(text: string): ImageReferenceResult {
  // dockerd resolves these as image ids before it tries them as names.
  if (imageIdHex(text)?.length === IMAGE_ID_LENGTH) return fail(`${quote(text)} is an image id, not a reference`);

  const { registry, remainder } = splitRegistry(text);
  const repository = remainder.split(':', 1)[0]!;
  if (repository.toLowerCase() !== repository) return fail(`repository name ${quote(repository)} must be lowercase`);
  if (!REGISTRY.test(registry)) return fail(`invalid reference format: ${quote(text)} (registry ${quote(registry)})`);

  const match = REMAINDER.exec(remainder);
  if (!match) return fail(`invalid reference format: ${quote(text)}`);
  const [, path = '', givenTag, givenDigest] = match;
  if (path.length > MAX_PATH_LENGTH) return fail(`repository name must not be more than ${MAX_PATH_LENGTH} characters`);
  if (givenDigest !== undefined) {
    const problem = digestProblem(givenDigest);
    if (problem) return fail(`${problem}: ${quote(givenDigest)}`);
  }

  const tagOrDefault = givenTag ?? (givenDigest === undefined ? DEFAULT_TAG : undefined);
  const suffix = (tagOrDefault === undefined ? '' : `:${tagOrDefault}`) + (givenDigest === undefined ? '' : `@${givenDigest}`);
  const official = registry === DEFAULT_REGISTRY && isOfficialPath(path);
  return {
    ok: true,
    ref: {
      registry,
      path,
      tag: tagOrDefault,
      digest: givenDigest,
      official,
      normalised: `${registry}/${path}${suffix}`,
      familiar: familiarName(registry, path) + suffix,
    },
  };
}

/**
 * The hex digits when `text` is an image id or a prefix of one (`0123ab`, `sha256:0123ab`); dockerd
 * takes a full id as an id, and a prefix as an id only when no image has that name.
 */
export function imageIdHex(text: string): string | undefined {
  return IMAGE_ID_OR_PREFIX.exec(text)?.[1];
}

/**
 * The first component is a registry when it holds `.` or `:`, is `localhost`, or has upper case
 * (repository paths may not); otherwise the reference is on Docker Hub, under `library/` when it
 * has a single component.
 */
function splitRegistry(text: string): { registry: string; remainder: string } {
  const slash = text.indexOf('/');
  if (slash === -1) return { registry: DEFAULT_REGISTRY, remainder: OFFICIAL_PREFIX + text };
  const first = text.slice(0, slash);
  const rest = text.slice(slash + 1);
  let registry: string;
  let remainder: string;
  if (first === LEGACY_DEFAULT_REGISTRY) [registry, remainder] = [DEFAULT_REGISTRY, rest];
  else if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) [registry, remainder] = [first, rest];
  else [registry, remainder] = [DEFAULT_REGISTRY, text];
  if (registry === DEFAULT_REGISTRY && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { registry, remainder };
}

/** go-digest's checks: a known algorithm and a lower-case hex value of its exact length. */
function digestProblem(value: string): string | undefined {
  const [algorithm = '', hex = ''] = value.split(':');
  const length = DIGEST_HEX_LENGTH.get(algorithm);
  if (length === undefined) return 'unsupported digest algorithm';
  if (hex.length !== length) return 'invalid digest length';
  if (!/^[a-f0-9]+$/.test(hex)) return 'invalid digest format';
  return undefined;
}

function isOfficialPath(path: string): boolean {
  return path.startsWith(OFFICIAL_PREFIX) && !path.slice(OFFICIAL_PREFIX.length).includes('/');
}

/** Docker Hub names lose `docker.io/`, and official images their `library/`. */
function familiarName(registry: string, path: string): string {
  if (registry !== DEFAULT_REGISTRY) return `${registry}/${path}`;
  return isOfficialPath(path) ? path.slice(OFFICIAL_PREFIX.length) : path;
}

function fail(error: string): ImageReferenceResult {
  return { ok: false, error };
}

/** Untrusted text in messages: JSON-quoted, so control characters cannot forge log lines. */
function quote(text: string): string {
  return JSON.stringify(text);
}
