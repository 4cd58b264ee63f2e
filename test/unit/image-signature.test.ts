import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { imageViolations, judgeImage, signatureQuestions } from '../../src/domain/checks/image.js';
import { checkPayload, keySetId, verdictCacheKey, type SignatureVerdict, type SigningKey } from '../../src/domain/image-signature.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { formatPolicyError } from '../../src/domain/policy/result.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { parseSigningKey, readSigningKeyFile } from '../../src/domain/policy/signing-key-file.js';
import { generateKeyPair, loadCosignKey, publicKeyOf, simpleSigningPayload } from '../helpers/cosign-stand-in.js';
import { makeFacts } from '../helpers/facts.js';

const DIGEST = `sha256:${'1'.repeat(64)}`;
const OTHER = `sha256:${'2'.repeat(64)}`;
const REPO = 'registry.example.com/team/app';

const ecPem = (namedCurve: string) => generateKeyPairSync('ec', { namedCurve }).publicKey.export({ type: 'spki', format: 'pem' }).toString();

t.test('payload: the type, the digest and the repository must be what is asked', async (t) => {
  t.same(checkPayload(simpleSigningPayload(REPO, DIGEST), REPO, DIGEST), { ok: true });
  t.same(checkPayload(simpleSigningPayload('index.docker.io/library/busybox', DIGEST), 'docker.io/library/busybox', DIGEST), { ok: true }, "cosign's spelling of Docker Hub");
  t.match(checkPayload(simpleSigningPayload(REPO, OTHER), REPO, DIGEST), { ok: false, refusal: 'signature-for-other-digest', why: /another manifest digest/ });
  t.match(checkPayload(simpleSigningPayload('registry.example.com/team/other', DIGEST), REPO, DIGEST), { ok: false, refusal: 'signature-for-other-digest', why: /another repository/ });
  t.match(checkPayload(simpleSigningPayload(`${REPO}:1`, DIGEST), REPO, DIGEST), { ok: false, refusal: 'signature-for-other-digest' }, 'a tag is not the repository');
  const wrongType = Buffer.from(simpleSigningPayload(REPO, DIGEST).toString().replace('cosign container image signature', 'atomic container signature'));
  t.match(checkPayload(wrongType, REPO, DIGEST), { ok: false, refusal: 'signature-invalid' });
  t.match(checkPayload(Buffer.from('{"critical":'), REPO, DIGEST), { ok: false, refusal: 'signature-invalid', why: /not JSON/ });
  t.match(checkPayload(Buffer.from('{"critical":{"__proto__":{"type":"cosign container image signature"}}}'), REPO, DIGEST), { ok: false, refusal: 'signature-invalid' });
});

const key = (fingerprint: string, name = fingerprint): SigningKey => ({ name, path: `/k/${name}`, pem: '', fingerprint });

t.test('cache key: the digest, the repository and the key bytes; not key order, names or repeats', async (t) => {
  const base = verdictCacheKey({ repository: REPO, digest: DIGEST, keys: [key('a'), key('b')] });
  t.equal(verdictCacheKey({ repository: REPO, digest: DIGEST, keys: [key('b', 'renamed'), key('a'), key('a')] }), base);
  t.not(verdictCacheKey({ repository: REPO, digest: OTHER, keys: [key('a'), key('b')] }), base);
  t.not(verdictCacheKey({ repository: 'registry.example.com/team/other', digest: DIGEST, keys: [key('a'), key('b')] }), base);
  t.not(verdictCacheKey({ repository: REPO, digest: DIGEST, keys: [key('a')] }), base, 'another key set');
  t.equal(keySetId([key('b'), key('a')]), 'a,b');
});

t.test('key files: ECDSA P-256 public keys only, read bounded, never blocking', async (t) => {
  const dir = t.testdir({});
  t.match(parseSigningKey(ecPem('prime256v1'), 'k'), { ok: true, fingerprint: /^[0-9a-f]{64}$/ });
  t.match(parseSigningKey(ecPem('secp384r1'), 'k'), { ok: false, error: /ECDSA secp384r1 key; only ECDSA P-256/ });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.match(parseSigningKey(rsa, 'k'), { ok: false, error: /rsa key/ });
  const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  t.match(parseSigningKey(ed, 'k'), { ok: false, error: /ed25519 key/ });
  const priv = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t.match(parseSigningKey(priv, 'k'), { ok: false, error: /private key/ });
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  t.match(readSigningKeyFile(fifo), { ok: false, error: /not a regular file/ }, 'a FIFO does not block the reader');
  writeFileSync(join(dir, 'big'), 'x'.repeat(20_000));
  t.match(readSigningKeyFile(join(dir, 'big')), { ok: false, error: /20000 bytes/ });
  t.match(readSigningKeyFile(join(dir, 'missing')), { ok: false, error: /ENOENT/ });
});

t.test("cosign's encrypted private key: the stand-in writes and loads it; the public halves agree", async (t) => {
  const dir = t.testdir({});
  const pair = await generateKeyPair(dir, 'cosign', 'pw');
  const privatePem = loadCosignKey(pair.privatePath, 'pw');
  t.match(parseSigningKey(publicKeyOf(privatePem), 'derived'), { ok: true, fingerprint: (readSigningKeyFile(pair.publicPath) as { fingerprint: string }).fingerprint });
  t.throws(() => loadCosignKey(pair.privatePath, 'wrong'), /wrong password/);
});

t.test('policy: keys by name or path, located errors for a bad path, an unknown name, an unsupported key', async (t) => {
  const dir = t.testdir({ 'p256.pub': ecPem('prime256v1'), 'p384.pub': ecPem('secp384r1') });
  const load = (...lines: string[]) => parsePolicy(['version: 1', 'images:', ...lines, ''].join('\n'), 'policy.yaml');
  const good = load(`  keys: { release: ${join(dir, 'p256.pub')} }`, '  rules:', `    - { match: "registry.example.com/**", require: { signed-by: [release, ${join(dir, 'p256.pub')}] } }`);
  t.ok(good.ok);
  const rule = (good as { policy: Policy }).policy.images.rules[0]!;
  t.same(rule.require.signedBy.map((k) => k.name), ['release', join(dir, 'p256.pub')]);
  t.equal(rule.require.onUnreachable, 'deny', 'fail closed by default');
  const bad = load(
    `  keys: { old: ${join(dir, 'p384.pub')} }`,
    '  rules:',
    `    - { match: "registry.example.com/**", require: { signed-by: [${join(dir, 'nope.pub')}, relative.pub] } }`,
    '    - { match: "other.example.com/**", require: { signed-by: [missing] } }',
  );
  const line5 = `    - { match: "registry.example.com/**", require: { signed-by: [${join(dir, 'nope.pub')}, relative.pub] } }`;
  const column = (text: string) => line5.indexOf(text) + 1;
  t.same(bad.ok ? [] : bad.errors.map(formatPolicyError), [
    `policy.yaml:3:16: images.keys.old: "${join(dir, 'p384.pub')}" holds an ECDSA secp384r1 key; only ECDSA P-256 keys (cosign generate-key-pair) are accepted`,
    `policy.yaml:5:${column(join(dir, 'nope.pub'))}: images.rules[0].require.signed-by[0]: cannot read the public key "${join(dir, 'nope.pub')}": ENOENT`,
    `policy.yaml:5:${column('relative.pub')}: images.rules[0].require.signed-by[1]: "relative.pub" is neither an absolute path to a PEM public key nor a key name`,
  ]);
  const unknown = load('  rules:', '    - { match: "other.example.com/**", require: { signed-by: [missing] } }');
  t.same(unknown.ok ? [] : unknown.errors.map(formatPolicyError), ['policy.yaml:4:63: images.rules[0].require.signed-by[0]: no key "missing" under images.keys']);
});

t.test('judgement on verdict facts: verified passes; a refusal, no verdict, a local tag refuse; on-unreachable decides', async (t) => {
  const dir = t.testdir({ 'k.pub': ecPem('prime256v1') });
  const policy = (onUnreachable = 'deny') => {
    const result = parsePolicy(`version: 1\nimages:\n  action: kill\n  rules:\n    - { match: "registry.example.com/**", require: { signed-by: [${join(dir, 'k.pub')}], on-unreachable: ${onUnreachable} } }\n`, 'p.yaml');
    if (!result.ok) throw new Error(result.errors.map(formatPolicyError).join('\n'));
    return result.policy;
  };
  const images = policy().images;
  const image = { reference: `${REPO}:1`, id: `sha256:${'ab'.repeat(32)}`, repoTags: [`${REPO}:1`], repoDigests: [`${REPO}@${DIGEST}`] };
  const questions = signatureQuestions(images, image);
  t.same(questions.map((q) => [q.repository, q.digest, q.keys.length]), [[REPO, DIGEST, 1]]);
  t.same(signatureQuestions(images, { ...image, reference: 'docker.io/library/busybox:1', repoTags: [], repoDigests: [`docker.io/library/busybox@${DIGEST}`] }), [], 'no rule asks: nothing to fetch');
  const verdict = (refusal: SignatureVerdict['refusal']): SignatureVerdict => ({ repository: REPO, digest: DIGEST, keySet: keySetId(images.rules[0]!.require.signedBy), refusal, why: 'because', signedBy: refusal === null ? 'k' : null });
  const judge = (signatures: SignatureVerdict[] | undefined, p: Policy = policy()) => judgeImage(p.images, makeFacts({ image: { ...image, signatures } })).refused?.refusal ?? null;
  t.equal(judge([verdict(null)]), null);
  t.equal(judge([verdict('unsigned')]), 'unsigned');
  t.equal(judge(undefined), 'signature-unverifiable', 'nothing looked up: refused');
  t.equal(judge([{ ...verdict(null), keySet: 'another' }]), 'signature-unverifiable', 'a verdict about other keys does not count');
  t.equal(judge([verdict('signature-unverifiable')]), 'signature-unverifiable');
  t.equal(judge([verdict('signature-unverifiable')], policy('allow')), null, 'on-unreachable: allow');
  t.equal(judge([verdict('unsigned')], policy('allow')), 'unsigned', 'on-unreachable allows only the unreachable');
  const local = makeFacts({ image: { ...image, repoDigests: [] } });
  t.equal(judgeImage(images, local).refused?.refusal, 'no-repo-digest', 'a local tag, even with images.local allow');
  t.same(imageViolations(images, makeFacts({ image: { ...image, signatures: [verdict('unsigned')] } })).map((v) => [v.action, v.details.reason]), [['kill', 'unsigned']]);
});
