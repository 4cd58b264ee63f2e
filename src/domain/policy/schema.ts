import { posix } from 'node:path';
import * as z from 'zod';
import { normaliseCapability, type Capability } from '../capabilities.js';
import { parseDeviceCgroupRule, type DeviceCgroupRule } from '../device-rules.js';
import { compileGlob } from '../glob.js';
import { parseCidr } from '../net/cidr.js';
import { parsePortRange } from '../net/port-range.js';
import type { SigningKey } from '../image-signature.js';
import { readSigningKeyFile } from './signing-key-file.js';
import { MAX_QUOTED, quote } from '../quote.js';
import { CHECK_IDS, DEFAULT_DOCKER_SOCKETS, HOST_NAMESPACES, REFUSED_RELABEL_ROOTS, RESOURCE_KINDS, ULIMIT_NAMES, type Cidr, type Glob, type Policy, type Selector, type Severity, type SourceRef } from './model.js';

/**
 * The policy file's schema (README "Policy"): the one definition of its shape, from which both the loader's
 * typed `Policy` and the published JSON Schema come. Every leaf is parsed here (addresses, ports, globs,
 * capabilities, paths), so an error is reported at the node that holds it, with a message that quotes
 * the value and says what was expected.
 */

/** The whole policy but where it came from (`hash`, `file`), which only the loader knows. */
type PolicyBody = Omit<Policy, 'hash' | 'file'>;

const SET_NAME = /^[a-z][a-z0-9_-]*$/;
/** Rule names end up in logs, `explain` output and firewall rule comments: keep them plain and short. */
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const OFFICIAL_IMAGES = 'docker.io/library/*';
/** A character no normalised image reference holds (nor a glob wildcard). */
const IMAGE_PATTERN_FOREIGN = /[^A-Za-z0-9._:@/[\]*?-]/u;
const MAX_LISTED = 10;

/** Both zod's raw issues (in error maps) and its final ones: a key the document does not have. */
export function isMissingKey(issue: { readonly code?: string; readonly input?: unknown }): boolean {
  return issue.input === undefined && (issue.code === 'invalid_type' || issue.code === 'invalid_value');
}

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string', number: 'a number', boolean: 'true or false', array: 'a list', object: 'a mapping', record: 'a mapping',
};

/** Messages for what the schema below does not word itself. Pass as the `error` option of every parse. */
const describeIssue: z.core.$ZodErrorMap = (issue) => {
  if (isMissingKey(issue)) return `missing required key ${quote(String(issue.path?.at(-1)))}`;
  switch (issue.code) {
    case 'invalid_type':
      return `${quote(issue.input)} is not ${TYPE_NAMES[issue.expected] ?? issue.expected}${typeHint(issue.expected, issue.input)}`;
    case 'invalid_value':
      return `${quote(issue.input)} is not allowed here; expected ${issue.values.length === 1 ? quote(issue.values[0]) : `one of: ${issue.values.join(', ')}`}`;
    case 'too_small':
      return issue.origin === 'array' ? `${quote(issue.input)} is empty; expected at least ${issue.minimum} item` : undefined;
    case 'invalid_key':
      return issue.issues[0]?.message;
    default:
      return undefined;
  }
};

function typeHint(expected: string, input: unknown): string {
  const scalar = typeof input === 'number' || typeof input === 'boolean';
  if (expected === 'string' && scalar) return `; quote it: ${quote(String(input))}`;
  if (expected === 'array' && (scalar || typeof input === 'string')) return `; write a list, e.g. [${quote(input)}]`;
  return '';
}

// ---------------------------------------------------------------------------------------------------
// Building blocks

/** A YAML mapping whose unknown keys are errors; the messages list the keys it takes. */
function mapping<Shape extends z.core.$ZodLooseShape>(shape: Shape) {
  const keys = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (issue) => {
      // The loader words one error per unknown key, "unknown key "x"; " + this.
      if (issue.code === 'unrecognized_keys') return `expected one of: ${keys}`;
      if (issue.code === 'invalid_type' && issue.input !== undefined) return `${quote(issue.input)} is not a mapping; expected keys: ${keys}`;
      return undefined;
    },
  });
}

/** A YAML string turned into `T` by `parse`; when it gives `undefined`, `problem` says why. */
function parsed<T>(what: string, parse: (text: string) => T | undefined, problem: (text: string) => string, nonString?: (input: unknown) => string) {
  return z
    .string({
      error: (issue) => (issue.input === undefined ? undefined : (nonString?.(issue.input) ?? `${quote(issue.input)} is not ${what}${typeHint('string', issue.input)}`)),
    })
    .transform((text, ctx) => {
      const value = parse(text);
      if (value === undefined) {
        ctx.addIssue({ code: 'custom', message: problem(text), input: text });
        return z.NEVER;
      }
      return value;
    });
}

/**
 * zod's records skip a `__proto__` key without a word (it would replace the prototype of the result).
 * A silently dropped label condition widens a selector, so the key is refused instead. As an
 * unrecognized key, the only kind of issue after which zod still validates the rest of the record.
 */
function record<Key extends z.core.$ZodRecordKey, Value extends z.core.SomeType>(key: Key, value: Value) {
  return z.preprocess((input, ctx) => {
    if (typeof input === 'object' && input !== null && Object.hasOwn(input, '__proto__')) {
      ctx.addIssue({ code: 'unrecognized_keys', keys: ['__proto__'], input: input as Record<string, unknown>, message: 'reserved, choose another name' });
    }
    return input;
  }, z.record(key, value));
}

const list = <Item extends z.core.SomeType>(item: Item) => z.array(item).min(1);
const unique = <T>(items: readonly T[]): T[] => [...new Set(items)];
const indexed = <T extends object>(items: readonly T[]) => items.map((item, index) => ({ ...item, index }));

type CamelCase<S extends string> = S extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
type CamelKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** YAML keys are kebab-case, the model's are camelCase. */
function camelKeys<T extends object>(value: T): CamelKeys<T> {
  return Object.fromEntries(Object.entries(value).map(([key, v]) => [key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v])) as CamelKeys<T>;
}

// ---------------------------------------------------------------------------------------------------
// Leaves

const glob = parsed<Glob>(
  'a glob pattern',
  (text) => (text === '' ? undefined : compileGlob(text)),
  () => 'an empty pattern matches nothing; expected a glob, e.g. "web-*"',
);

/**
 * Image globs match the normalised reference `registry/path:tag`, so a pattern without a registry
 * (`nginx:*`, `team/app:*`) would silently never match: refuse it and suggest the full form.
 */
function imagePatternProblem(pattern: string): string | undefined {
  if (pattern === '') return 'an empty pattern matches nothing; expected a glob, e.g. "docker.io/library/nginx:*"';
  const foreign = IMAGE_PATTERN_FOREIGN.exec(pattern)?.[0];
  if (foreign !== undefined) return `${quote(pattern)} never matches: ${quote(foreign)} cannot appear in an image reference`;
  if (pattern.includes('**')) return undefined;
  const [first = '', ...rest] = pattern.split('/');
  if (rest.length > 0 && (/[.:*?]/.test(first) || first === 'localhost')) return undefined;
  const suggestion = rest.length > 0 ? `docker.io/${pattern}` : `docker.io/library/${pattern}`;
  return `${quote(pattern)} never matches: image patterns match the normalised reference registry/path:tag; did you mean ${quote(suggestion)}?`;
}

const compileImagePattern = (text: string) => (imagePatternProblem(text) ? undefined : compileGlob(text));

const imageGlob = parsed<Glob>('an image pattern', compileImagePattern, (text) => imagePatternProblem(text)!);

const imageRuleMatch = parsed<Glob>(
  'an image pattern or "official"',
  (text) => (text === 'official' ? compileGlob(OFFICIAL_IMAGES) : compileImagePattern(text)),
  (text) => imagePatternProblem(text)!,
).meta({ description: `A glob over the normalised names the image's repo digests prove, or "official" (= ${OFFICIAL_IMAGES}).` });

const PORT_SPEC_EXPECTED = 'expected PORT/PROTO or FROM-TO/PROTO, e.g. 443/tcp';
const portRange = parsed(
  'a port spec',
  parsePortRange,
  (text) => {
    if (/^[1-9]\d{0,4}(-[1-9]\d{0,4})?$/.test(text)) return `${quote(text)} has no protocol; the protocol is required: ${text}/tcp, ${text}/udp or ${text}/sctp`;
    if (/^(0|[1-9]\d*)(-(0|[1-9]\d*))?\/(tcp|udp|sctp)$/.test(text)) return `${quote(text)} is out of range; ports are 1-65535 and FROM <= TO`;
    return `${quote(text)} is not a port spec; ${PORT_SPEC_EXPECTED}`;
  },
  (input) => `${quote(input)} is not a port spec; ${typeof input === 'number' ? `write it with its protocol, e.g. ${input}/tcp` : PORT_SPEC_EXPECTED}`,
).meta({ description: 'PORT/PROTO or FROM-TO/PROTO: 443/tcp, 8000-8100/udp, 53/sctp.' });

function cidrProblem(text: string): string {
  const mapped = /::ffff:/i.test(text) ? '; write IPv4-mapped addresses as plain IPv4' : '';
  return `${quote(text)} is not an IP address or CIDR${mapped}`;
}

const cidr = parsed<Cidr>('an IP address or CIDR', parseCidr, cidrProblem);

/**
 * ASCII only: upper-casing maps look-alikes onto real names (`ſys_admin` → `SYS_ADMIN`, dotless `ı` → `I`),
 * and a policy names capabilities as the kernel spells them.
 */
const CAPABILITY_NAME = /^[A-Za-z0-9_]{1,64}$/;

const capability = parsed<Capability>(
  'a Linux capability',
  (text) => {
    const name = CAPABILITY_NAME.test(text) ? normaliseCapability(text) : undefined;
    return name === 'ALL' ? undefined : name;
  },
  (text) =>
    !CAPABILITY_NAME.test(text)
      ? `${quote(text)} is not a Linux capability; capability names are ASCII letters, digits and "_" (e.g. SYS_ADMIN)`
      : normaliseCapability(text) === 'ALL'
        ? `${quote(text)} cannot be forbidden as a whole; list the capabilities, e.g. SYS_ADMIN, NET_ADMIN`
        : `${quote(text)} is not a Linux capability (e.g. SYS_ADMIN, NET_ADMIN)`,
);

/** `/srv/containers/` and `/srv/x/../containers` → `/srv/containers`; relative paths → undefined. */
function normaliseAbsolutePath(text: string): string | undefined {
  if (!text.startsWith('/') || text.includes('\0')) return undefined;
  const normal = posix.normalize(text);
  return normal.length > 1 ? normal.replace(/\/+$/, '') : normal;
}

const notAbsolute = (text: string) => `${quote(text)} is not an absolute path; expected e.g. /srv/containers`;

const absolutePath = parsed('an absolute path', normaliseAbsolutePath, notAbsolute);

const relabelRoot = parsed(
  'an absolute path',
  (text) => {
    const path = normaliseAbsolutePath(text);
    return path === undefined || REFUSED_RELABEL_ROOTS.includes(path) ? undefined : path;
  },
  (text) => {
    const path = normaliseAbsolutePath(text);
    if (path === undefined) return notAbsolute(text);
    const shown = path === text ? '' : ` (${path})`;
    return `${quote(text)}${shown} is a system directory and cannot be a relabel root; use a directory of its own, e.g. /srv/containers`;
  },
);

const deviceCgroupRule = parsed<DeviceCgroupRule>(
  'a device cgroup rule',
  parseDeviceCgroupRule,
  (text) => `${quote(text)} is not a device cgroup rule; expected TYPE MAJOR:MINOR ACCESS as --device-cgroup-rule takes it, e.g. "c 10:229 rw"`,
);

const setName = z
  .string()
  .regex(SET_NAME, { error: (issue) => `${quote(issue.input)} is not a source set name; expected lower-case letters, digits, "-" and "_", starting with a letter` })
  .refine((name) => name !== 'any', { error: '"any" is reserved (it means every source); name the set something else' });

const ruleName = z
  .string({ error: (issue) => (issue.input === undefined ? undefined : `${quote(issue.input)} is not a rule name${typeHint('string', issue.input)}`) })
  .regex(RULE_NAME, { error: (issue) => `${quote(issue.input)} is not a rule name; expected letters, digits, ".", "_" and "-", at most 63 characters` });

type SourceRefDraft = Exclude<SourceRef, { kind: 'set' }> | { readonly kind: 'set'; readonly name: string };

/** An `allow` entry: `any`, an address or CIDR, or the name of a set in `sources` (resolved once all is parsed). */
function sourceRef(definedSets: ReadonlySet<string>) {
  const defined = definedSetsText(definedSets);
  return parsed<SourceRefDraft>(
    '"any", an IP address or CIDR, or a source set',
    (text) => {
      if (text === 'any') return { kind: 'any' };
      if (SET_NAME.test(text)) return definedSets.has(text) ? { kind: 'set', name: text } : undefined;
      const block = parseCidr(text);
      return block && { kind: 'cidr', cidr: block };
    },
    (text) => {
      if (SET_NAME.test(text)) return `${quote(text)} is not a source set; ${defined}`;
      if (/^[\d.:/]/.test(text) || text.includes(':')) return cidrProblem(text);
      return `${quote(text)} is not "any", an IP address or CIDR, or a source set; ${defined}`;
    },
  );
}

function definedSetsText(sets: ReadonlySet<string>): string {
  if (sets.size === 0) return 'no sets are defined under "sources"';
  const names = [...sets].slice(0, MAX_LISTED).map((name) => (name.length > MAX_QUOTED ? `${name.slice(0, MAX_QUOTED)}…` : name));
  return `defined sets: ${names.join(', ')}${sets.size > MAX_LISTED ? `, … (${sets.size} in all)` : ''}`;
}

const action = z.enum(['alert', 'stop', 'kill']);
const severity = z.enum(['low', 'medium', 'high', 'critical']);

// ---------------------------------------------------------------------------------------------------
// Sections

const selectorShape = {
  container: glob.optional().meta({ description: 'Container name glob.' }),
  image: imageGlob.optional().meta({ description: "Glob over the normalised names the image's repo digests prove (registry/path:tag); a tag alone proves nothing." }),
  label: record(z.string().min(1, { error: 'an empty label key; expected a label name' }), glob).optional().meta({ description: 'Label key → value glob; every one must hold.' }),
};

function toSelector<T extends { label?: Record<string, Glob> | undefined }>({ label, ...rest }: T) {
  return { ...camelKeys(rest), ...(label && { labels: new Map(Object.entries(label)) }) };
}

/** Selects containers as a whole (checks' exceptions, image exceptions): no port fields, which could never hold. */
const containerSelector = mapping(selectorShape).transform((s): Selector => toSelector(s));

/** Selects published ports: `port` is the host port as `docker ps` shows it, `container-port` the one inside. */
const portSelector = mapping({
  ...selectorShape,
  port: portRange.optional(),
  'container-port': portRange.optional(),
}).transform((s): Selector => toSelector(s));

/** A runtime check: on when present. `extra` are its own settings. */
function check<Extra extends z.core.$ZodLooseShape>(defaultSeverity: Severity, extra: Extra) {
  return mapping({ action, severity: severity.default(defaultSeverity), ...extra }).transform(camelKeys).optional();
}

function uniqueRuleNames(rules: readonly unknown[], ctx: z.RefinementCtx): void {
  const firstIndex = new Map<string, number>();
  rules.forEach((rule, index) => {
    // Runs even when some rules are invalid (so every error shows at once): read defensively.
    const name = typeof rule === 'object' && rule !== null && 'name' in rule ? rule.name : undefined;
    if (typeof name !== 'string') return;
    const first = firstIndex.get(name);
    if (first === undefined) firstIndex.set(name, index);
    else ctx.addIssue({ code: 'custom', message: `${quote(name)} already names ports.rules[${first}]; rule names must be unique`, path: [index, 'name'], input: name });
  });
}

function portsSection(definedSets: ReadonlySet<string>) {
  const rule = mapping({ name: ruleName, match: portSelector, allow: z.array(sourceRef(definedSets)) });
  return mapping({
    default: z.enum(['deny', 'allow']).default('deny').meta({ description: 'For published ports no rule matches.' }),
    rules: z
      .array(rule)
      .superRefine(uniqueRuleNames, { when: (payload) => Array.isArray(payload.value) })
      .prefault([])
      .transform(indexed)
      .meta({ description: 'First match wins.' }),
    labels: z.enum(['ignore', 'narrow']).default('narrow'),
  });
}

/** A cgroup parent as `--cgroup-parent` takes it: a cgroupfs path or a systemd slice. */
const cgroupParent = z
  .string()
  .regex(/^[^\0\n]{1,255}$/, { error: (issue) => `${quote(issue.input)} is not a cgroup parent; expected e.g. /docker-limited or limited.slice` });

/** dockerd takes any count; beyond this a policy is as good as `always`. */
const MAX_RESTART_RETRIES = 1000;

/** A stop holds one of the daemon's few concurrent tasks for its grace period: keep it short. */
const MAX_STOP_GRACE_SECONDS = 120;

const containersSection = mapping({
  capabilities: check('high', { forbidden: list(capability).transform(unique) }),
  privileged: check('critical', {}),
  'host-namespaces': check('high', { namespaces: list(z.enum(HOST_NAMESPACES)).transform(unique) }),
  'docker-socket': check('critical', {
    paths: z
      .array(absolutePath)
      .prefault([])
      .transform((extra) => unique([...DEFAULT_DOCKER_SOCKETS, ...extra]))
      .meta({ description: `Socket paths besides ${DEFAULT_DOCKER_SOCKETS.join(', ')}.` }),
  }),
  'sensitive-mounts': check('high', {
    paths: list(absolutePath).meta({ description: 'Each covers itself, what is below it and what contains it; `/` only itself.' }),
    allowed: z.array(absolutePath).prefault([]).meta({ description: 'Exceptions: a mount at or below one of these is not judged by the listed paths that contain it.' }),
    'read-only-allowed': z.boolean().default(false),
  }),
  devices: check('medium', {
    allowed: z.array(absolutePath).prefault([]).meta({ description: 'Host device paths containers may be given.' }),
    'allowed-cgroup-rules': z
      .array(deviceCgroupRule)
      .prefault([])
      .meta({ description: "Device cgroup rules containers may add beyond Docker's defaults: a container's rule passes when these and the defaults grant all it asks." }),
  }),
  'privileged-exec': check('high', {}),
  'no-new-privileges': check('low', {}),
  'seccomp-unconfined': check('medium', {}),
  'apparmor-unconfined': check('medium', {}),
  'root-user': check('low', {}),
  'unmasked-paths': check('high', {}),
  'resource-limits': check('low', { require: list(z.enum(RESOURCE_KINDS)).transform(unique) }),
  // CIS Docker Benchmark §5 items (checks/cis-runtime.ts)
  'read-only-root': check('low', {}),
  'restart-policy': check('low', {
    'max-retries': z.number().int().min(0).max(MAX_RESTART_RETRIES).default(5).meta({ description: 'on-failure may retry at most this often; always and unless-stopped fail.' }),
  }),
  'wildcard-bind': check('low', {}),
  'privileged-ports': check('low', {}),
  'mount-propagation': check('medium', {}),
  'cgroup-parent': check('medium', {
    allowed: z.array(cgroupParent).prefault([]).meta({ description: 'Cgroup parents containers may name (--cgroup-parent), compared as written.' }),
  }),
  healthcheck: check('low', {}),
  ulimits: check('low', { allowed: z.array(z.enum(ULIMIT_NAMES)).prefault([]).transform(unique).meta({ description: 'Limits containers may override (--ulimit).' }) }),
  'label-disabled': check('medium', {}),
  'root-exec': check('medium', {}),
  'default-bridge': check('low', {}),
  exceptions: z
    .array(mapping({ match: containerSelector, allow: list(z.enum(CHECK_IDS)) }))
    .prefault([])
    .transform(indexed),
  'stop-grace-seconds': z
    .number()
    .int()
    .min(0)
    .max(MAX_STOP_GRACE_SECONDS)
    .default(10)
    .meta({ description: "A stop sends SIGTERM, then SIGKILL this many seconds later; the container's own stop signal and timeout are not used." }),
}).transform(camelKeys);

/** A PEM public key file, read and checked where the policy names it (signing-key-file.ts: which key types, why). */
function readKeyAt(text: string, ctx: z.core.$RefinementCtx<string>): { path: string; pem: string; fingerprint: string } {
  const path = normaliseAbsolutePath(text);
  const key = path === undefined ? { ok: false as const, error: `${quote(text)} is not an absolute path; expected e.g. /etc/dockwarden/keys/cosign.pub` } : readSigningKeyFile(path);
  if (!key.ok) {
    ctx.addIssue({ code: 'custom', message: key.error, input: text });
    return z.NEVER;
  }
  return { path: path!, pem: key.pem, fingerprint: key.fingerprint };
}

const signingKeyFile = z.string().transform(readKeyAt);

const KEY_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
const keyName = z.string().regex(KEY_NAME, { error: (issue) => `${quote(issue.input)} is not a key name; expected lowercase letters, digits, - and _, starting with a letter` });

/** A `signed-by` entry: a key file (an absolute path) or the name of one under `images.keys`, resolved with the section. */
const signedByEntry = z.string().transform((text, ctx): { path: string; pem: string; fingerprint: string } | { name: string } => {
  if (text.startsWith('/')) return readKeyAt(text, ctx);
  if (KEY_NAME.test(text)) return { name: text };
  ctx.addIssue({ code: 'custom', message: `${quote(text)} is neither an absolute path to a PEM public key nor a key name`, input: text });
  return z.NEVER;
});

const imagesSection = mapping({
  rules: z
    .array(
      mapping({
        match: imageRuleMatch,
        // What a matched image must also satisfy; all must hold.
        require: mapping({
          'digest-pinned': z.boolean().default(false).meta({ description: "The reference carries @sha256:…, and that digest is among the image's RepoDigests." }),
          'signed-by': list(signedByEntry)
            .optional()
            .meta({ description: 'A cosign signature by one of these keys (key names or absolute paths of PEM public keys) must sign the manifest digest in this repository.' }),
          'on-unreachable': z.enum(['deny', 'allow']).default('deny').meta({ description: 'When the registry holding the signatures cannot be reached: deny (fail closed) or allow.' }),
        })
          .transform(camelKeys)
          .prefault({}),
      }),
    )
    .prefault([])
    .transform(indexed)
    .meta({ description: 'The most specific matching pattern wins: the longer literal prefix, then more literal characters, then fewer **, then the earlier rule.' }),
  default: z.enum(['deny', 'allow']).default('allow').meta({ description: 'For images no rule matches.' }),
  local: z
    .enum(['deny', 'allow'])
    .optional()
    .meta({ description: 'For images with no repo digest (built, committed or loaded on this host): no pattern matches them. Default: images.default.' }),
  action: action.default('alert'),
  severity: severity.default('medium'),
  exceptions: z.array(containerSelector).prefault([]).meta({ description: 'Containers excused from every image check.' }),
  'latest-tag': check('low', {}).meta({ description: 'A container created from a :latest or untagged reference (CIS 4).' }),
  healthcheck: check('low', {}).meta({ description: 'An image without a healthcheck (CIS 4.6).' }),
  keys: record(keyName, signingKeyFile).prefault({}).meta({ description: 'Named public keys (PEM files, ECDSA P-256 as cosign generate-key-pair makes them) for signed-by.' }),
  'registry-auth': absolutePath
    .optional()
    .meta({ description: "Docker's config.json with the credentials for the registries signatures are read from (auths.<registry>.auth); never logged." }),
  'insecure-registries': z.array(z.string().regex(/^[A-Za-z0-9.[\]:-]{1,255}$/, { error: (issue) => `${quote(issue.input)} is not a registry host[:port]` })).prefault([])
    .meta({ description: 'Registries whose signatures are read over plain HTTP (host:port as in image references); every other one over HTTPS.' }),
})
  .superRefine((images, ctx) => {
    images.rules.forEach((rule, i) =>
      rule.require.signedBy?.forEach((entry, j) => {
        if ('name' in entry && !Object.hasOwn(images.keys, entry.name)) {
          ctx.addIssue({ code: 'custom', path: ['rules', i, 'require', 'signed-by', j], input: entry.name, message: `no key ${quote(entry.name)} under images.keys` });
        }
      }),
    );
  })
  .transform(({ local, keys, 'registry-auth': registryAuth, 'insecure-registries': insecureRegistries, rules, 'latest-tag': latestTag, ...images }) => ({
    ...images,
    ...(latestTag && { latestTag }),
    local: local ?? images.default,
    registryAuth: registryAuth ?? null,
    insecureRegistries: unique(insecureRegistries),
    rules: rules.map(({ require: { signedBy, ...require }, ...rule }) => ({
      ...rule,
      require: { ...require, signedBy: (signedBy ?? []).map((entry): SigningKey => ('name' in entry ? { name: entry.name, ...keys[entry.name]! } : { name: entry.path, ...entry })) },
    })),
  }));

const owner = parsed(
  'uid:gid',
  (text) => {
    const m = /^(0|[1-9]\d{0,9}):(0|[1-9]\d{0,9})$/.exec(text);
    const [uid, gid] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
    return uid <= 0xfffffffe && gid <= 0xfffffffe ? { uid, gid } : undefined;
  },
  (text) => `${quote(text)} is not an owner; expected numeric uid:gid, e.g. "999:999"`,
);

const dirMode = parsed(
  'an octal mode',
  (text) => (/^0?[0-7]{3,4}$/.test(text) ? parseInt(text, 8) : undefined),
  (text) => `${quote(text)} is not a directory mode; expected octal, e.g. "0750"`,
  (input) => `${quote(input)} is not a directory mode; write it quoted, e.g. "0750" (unquoted, YAML reads it as a number)`,
);

const storageDirectory = mapping({
  match: containerSelector,
  path: relabelRoot.meta({ description: 'Host directory; created when a matching container mounts it and it does not exist.' }),
  owner: owner.meta({ description: 'Numeric uid:gid, e.g. "999:999".' }),
  mode: dirMode.default(0o750).meta({ description: 'Octal, quoted: "0750".' }),
});

const volumesSection = mapping({
  create: z.array(storageDirectory).prefault([]).transform(indexed).meta({ description: 'Persistent storage directories for matching containers.' }),
  selinux: mapping({
    relabel: z.enum(['shared', 'private', 'off']).default('off').meta({ description: "shared = container_file_t:s0 (like :z); private = the container's MountLabel (like :Z)." }),
    roots: z.array(relabelRoot).prefault([]).meta({ description: 'Only host paths under these are ever relabelled.' }),
  }).prefault({}),
});

/** Docker network names (`docker network create` takes these characters). */
const networkName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, { error: (issue) => `${quote(issue.input)} is not a Docker network name` });

const networkSection = mapping({
  'anti-spoofing': z.enum(['on', 'off']).default('on').meta({ description: "on = frames from a container's bridge port must carry its own MAC and addresses (ARP, IP, IPv6, ND)." }),
  exceptions: z.array(networkName).prefault([]).meta({ description: 'Networks (by name) whose containers are not filtered on their bridge and may be reached at their own addresses (direct routing).' }),
}).transform(({ 'anti-spoofing': antiSpoofing, exceptions }) => ({ antiSpoofing: antiSpoofing === 'on', exceptions: [...new Set(exceptions)] }));

/** Names defined under `sources`, read ahead of validation so `allow` entries can be checked where they are written. */
function definedSourceSets(document: unknown): Set<string> {
  const sources = typeof document === 'object' && document !== null ? (document as { sources?: unknown }).sources : undefined;
  if (typeof sources !== 'object' || sources === null || Array.isArray(sources)) return new Set();
  return new Set(Object.keys(sources).filter((name) => setName.safeParse(name).success));
}

/** The schema, for a document whose `sources` define `definedSets`. */
export function policySchema(definedSets: ReadonlySet<string>) {
  return mapping({
    version: z.literal(1, {
      error: (issue) => (issue.input === undefined ? 'missing "version: 1" (the policy format version)' : `${quote(issue.input)} is not a supported policy version; expected 1`),
    }),
    mode: z.enum(['enforce', 'audit']).default('enforce').meta({ description: 'audit = alert only, block nothing.' }),
    sources: record(setName, z.array(cidr)).prefault({}).meta({ description: 'Named source sets for `allow` lists.' }),
    ports: portsSection(definedSets).prefault({}),
    containers: containersSection.prefault({}),
    images: imagesSection.prefault({}),
    volumes: volumesSection.prefault({}),
    network: networkSection.prefault({}),
  })
    .transform(({ version, mode, sources, ports, containers, images, volumes, network }): PolicyBody => {
      const sets = new Map(Object.entries(sources));
      const resolve = (ref: SourceRefDraft): SourceRef => (ref.kind === 'set' ? { ...ref, cidrs: sets.get(ref.name)! } : ref);
      const rules = ports.rules.map((rule) => ({ ...rule, allow: rule.allow.map(resolve) }));
      return { version, mode, sources: sets, ports: { ...ports, rules }, containers, images, volumes, network };
    })
    .meta({ title: 'dockwarden policy', description: 'What containers on this Docker host may do, and who may reach their published ports.' });
}

/** Validates a parsed YAML document into the typed policy body; issues carry their input and final wording. */
export function validatePolicyDocument(document: unknown) {
  return policySchema(definedSourceSets(document)).safeParse(document, { reportInput: true, error: describeIssue });
}
