import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { PolicyError } from '../../src/domain/policy/result.js';

/**
 * Generators for the policy and config fuzz suite (issue 21) and its bench: mutations of the shipped
 * examples, documents built from the policy's vocabulary and written in several equivalent YAML styles,
 * and hostile YAML (aliases, merges, tags, deep nesting, odd line endings, duplicate keys).
 */
const CONFIG_DIR = resolve(import.meta.dirname, '../../config');
export const EXAMPLES = ['policy.yaml', 'policy.strict.yaml'].map((name) => readFileSync(`${CONFIG_DIR}/${name}`, 'utf8'));
export const CONFIG_EXAMPLE = readFileSync(`${CONFIG_DIR}/config.yaml`, 'utf8');

const POLICY_KEYS = [
  'version', 'mode', 'sources', 'ports', 'default', 'labels', 'rules', 'name', 'match', 'allow', 'container', 'image', 'port', 'container-port',
  'label', 'containers', 'capabilities', 'forbidden', 'action', 'severity', 'privileged', 'host-namespaces', 'namespaces', 'docker-socket',
  'sensitive-mounts', 'paths', 'exceptions', 'images', 'volumes', 'network', 'antiSpoofing', 'office', '__proto__', 'constructor', 'toString', '<<',
];
const CONFIG_KEYS = ['docker', 'socket', 'timeoutMs', 'policy', 'file', 'log', 'level', 'alerts', 'syslog', 'webhooks', 'url', 'secret', 'state', 'dir', 'log.level', '__proto__', 'constructor'];
const SCALARS = [
  1, 0, -1, 65536, 1.5, true, false, null, '', 'any', 'deny', 'allow', 'enforce', 'audit', 'kill', 'alert', 'stop', 'high', 'SYS_ADMIN', 'sys_admin', '\u017Fys_admin',
  '198.51.100.7', '198.51.100.0/24', '2001:db8::/32', '10.0.0.300', '443/tcp', '1-65535/udp', '0/tcp', 'grafana*', 'docker.io/library/*', '/etc', 'etc', 'office',
  'pid', 'net', '/var/run/docker.sock', 'debug', 'info', 'x'.repeat(200), '\u0000\u202e', 'true', '1', 'Infinity',
];

const scalar = fc.constantFrom(...SCALARS);
/** A plain JS document (no aliases, no undefined) from a vocabulary of keys. */
export const documentOf = (keys: readonly string[]) =>
  fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar,
      fc.array(tie('node'), { maxLength: 5 }),
      fc.dictionary(fc.constantFrom(...keys), tie('node'), { maxKeys: 6 }),
    ),
  })).node;

/** Mostly-valid policies: `version: 1` and top-level keys from the schema with generated values. */
export const policyDocument = fc.dictionary(fc.constantFrom(...POLICY_KEYS.slice(0, 8), 'containers', 'sources'), documentOf(POLICY_KEYS), { maxKeys: 5 }).map((d) => ({ version: 1, ...d }));
export const configDocument = fc.dictionary(fc.constantFrom(...CONFIG_KEYS), documentOf(CONFIG_KEYS), { maxKeys: 5 });

/** Writings of one document that YAML reads as the same data. */
export const STYLES: ReadonlyArray<(doc: unknown) => string> = [
  (doc) => stringify(doc),
  (doc) => stringify(doc, { indent: 4, indentSeq: false }),
  (doc) => stringify(doc, { collectionStyle: 'flow' }),
  (doc) => stringify(doc, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN' }),
  (doc) => JSON.stringify(doc, null, 2),
  (doc) => stringify(doc).replace(/\n/g, '\r\n'),
  (doc) => `# leading comment\n---\n${stringify(doc, { lineWidth: 0 })}...\n`,
];

const HOSTILE = [
  'a: &a [x]\nb: [*a, *a]\n', 'version: &v {toString: 1, a: *v}\n', 'log: &a {x: *a}\n', '%YAML 1.1\n---\n{on: 1, "true": 2}\n', '{0x1: 1, "1": 2}\n',
  '<<: {version: 1}\n', '%YAML 1.1\n---\nx: &m {mode: audit}\n<<: *m\nversion: 1\n', '!!binary aGVsbG8=\n', '!!set {a, b}\n', '!!omap [a: 1]\n', `${'['.repeat(3000)}\n`,
  '? [a]\n: 1\n', 'version: 1\rmode: audit\r', '\ufeffversion: 1\n', '---\nversion: 1\n---\nversion: 1\n', '*unknown\n', 'version: !!str 1\n', '"\\ud800": 1\n',
  '__proto__: {polluted: 1}\n', 'constructor: {prototype: {polluted: 1}}\n', 'a: *b\n', '&a a: 1\n', 'version: 1\n\t- tab\n',
];

/** Mutations of a text: cut, insert hostile fragments, repeat or swap lines. */
export const mutationOf = (texts: readonly string[]) =>
  fc
    .tuple(
      fc.constantFrom(...texts),
      fc.array(
        fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.oneof(fc.constantFrom(':', '[', ']', '{', '}', '&a ', '*a', '!!', '- ', '\n', '\r', '\t', '  ', '"', "'", '#', '<<: ', '%YAML 1.1\n---\n', '\u00a0', '\u017F', ...HOSTILE), fc.string({ maxLength: 8 }))),
        { minLength: 1, maxLength: 6 },
      ),
    )
    .map(([text, edits]) =>
      edits.reduce((t, [at, cut, insert]) => {
        const i = at % (t.length + 1);
        return t.slice(0, i) + insert + t.slice(i + cut);
      }, text),
    );

export const hostile = fc.constantFrom(...HOSTILE);

/** Where each error of a text must lie: a line of the text and a column of that line (or just past its end). */
export function outsideTheFile(text: string, errors: readonly Pick<PolicyError, 'line' | 'column'>[]): string[] {
  const lines = text.split(/\r\n|\r|\n/);
  return errors.filter((e) => e.line < 1 || e.line > lines.length || e.column < 1 || e.column > lines[e.line - 1]!.length + 1).map((e) => `${e.line}:${e.column}`);
}

/** The outcome of a policy as data that does not depend on how it was written: the policy (minus hash) or the messages. */
export function outcome(text: string): unknown {
  const result = parsePolicy(text, 'p.yaml');
  if (!result.ok) return { ok: false, messages: result.errors.map((e) => `${e.path}: ${e.message}`).sort() };
  const { hash: _hash, ...policy } = result.policy;
  return { ok: true, policy: JSON.parse(JSON.stringify(policy, (_, v: unknown) => (v instanceof Map ? [...v] : typeof v === 'function' ? 'fn' : v))) };
}
