import { createHash } from 'node:crypto';

/**
 * Cosign image signatures, keyed and offline (`images.rules[].require.signed-by`). Pure: what a
 * verified signature must say, the verdict a verifier records as a fact of the image, and the key a
 * verdict is cached under. The registry reads and the signature check itself are the adapter's
 * (src/adapters/registry); the judgement of a container on these verdicts is the image check's.
 */

/** Why a signature requirement refused an image; stable, for alerts and tooling. */
export type SignatureRefusal =
  | 'no-repo-digest'
  | 'unsigned'
  | 'signature-invalid'
  | 'signed-by-unknown-key'
  | 'signature-for-other-digest'
  | 'signature-unverifiable';

/** What cosign's simple-signing payload says it signs (`critical.type`). */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';
/** The layer annotation carrying the base64 signature over the layer's bytes. */
export const COSIGN_SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

/** One public key a rule trusts; plain data (the policy crosses threads by structured clone). */
export interface SigningKey {
  /** As the policy names it: a key name under `images.keys`, or the path written in `signed-by`. */
  readonly name: string;
  readonly path: string;
  /** SubjectPublicKeyInfo, PEM. */
  readonly pem: string;
  /** sha256 of the DER SubjectPublicKeyInfo, hex: what identifies the key in caches and reports. */
  readonly fingerprint: string;
}

/** A signature question: does some signature by one of `keys` sign `repository@digest`? */
export interface SignatureQuestion {
  /** `registry/path`, normalised (`docker.io/library/busybox`). */
  readonly repository: string;
  /** The manifest digest, `sha256:<hex>`, from the image's RepoDigests in that repository. */
  readonly digest: string;
  readonly keys: readonly SigningKey[];
}

/** The answer, as a fact of the image: filled by a verifier before the pure image check runs. */
export interface SignatureVerdict {
  readonly repository: string;
  readonly digest: string;
  /** `keySetId` of the keys asked about. */
  readonly keySet: string;
  /** null: a signature by one of the keys signs this digest in this repository. */
  readonly refusal: Exclude<SignatureRefusal, 'no-repo-digest'> | null;
  /** One clause for messages and `explain`; names in it are JSON-quoted. */
  readonly why: string;
  /** The key that signed (`name`), when verified. */
  readonly signedBy: string | null;
}

/** Bumped when what a verified verdict means changes: persisted verdicts of another version are not trusted. */
const VERDICT_FORMAT = 'cosign-keyed-v1';

/** The key set as one string: the same keys in any order, written any number of times, are the same set. */
export function keySetId(keys: readonly SigningKey[]): string {
  return [...new Set(keys.map((k) => k.fingerprint))].sort().join(',');
}

/**
 * What a verdict is cached under: everything it depends on. The verdict is a function of the digest,
 * the repository the payload must name, and the keys (by their bytes, not their names or paths: a key
 * file replaced under the same path is another key). `on-unreachable` is not in it: an unreachable
 * registry's verdict is never cached.
 */
export function verdictCacheKey(question: Pick<SignatureQuestion, 'repository' | 'digest' | 'keys'>): string {
  return createHash('sha256').update(JSON.stringify([VERDICT_FORMAT, question.repository, question.digest, keySetId(question.keys)])).digest('hex');
}

/** The registries the payload's `docker-reference` may name for a repository: Docker Hub is also `index.docker.io`. */
function acceptedReferences(repository: string): string[] {
  return repository.startsWith('docker.io/') ? [repository, `index.${repository}`] : [repository];
}

export type PayloadCheck = { readonly ok: true } | { readonly ok: false; readonly refusal: 'signature-invalid' | 'signature-for-other-digest'; readonly why: string };

/**
 * What a payload whose signature verified must say: it is a cosign image signature, for this digest,
 * in this repository. Called only on bytes whose signature verified: parsing attacker bytes before the
 * signature is checked is what cosign's spec warns against.
 */
export function checkPayload(payload: Buffer, repository: string, digest: string): PayloadCheck {
  let document: unknown;
  try {
    document = JSON.parse(payload.toString('utf8'));
  } catch {
    return { ok: false, refusal: 'signature-invalid', why: 'the signed payload is not JSON' };
  }
  const critical = field(document, 'critical');
  const type = field(critical, 'type');
  if (type !== COSIGN_SIGNATURE_TYPE) return { ok: false, refusal: 'signature-invalid', why: `the signed payload's critical.type is not ${JSON.stringify(COSIGN_SIGNATURE_TYPE)}` };
  const signedDigest = field(field(critical, 'image'), 'docker-manifest-digest');
  if (signedDigest !== digest) return { ok: false, refusal: 'signature-for-other-digest', why: `the signature signs another manifest digest (${shown(signedDigest)})` };
  const signedReference = field(field(critical, 'identity'), 'docker-reference');
  if (typeof signedReference !== 'string' || !acceptedReferences(repository).includes(signedReference)) {
    return { ok: false, refusal: 'signature-for-other-digest', why: `the signature signs this digest in another repository (${shown(signedReference)})` };
  }
  return { ok: true };
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : undefined;
}

/** A signed value, quoted and cut short: it is the signer's text. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value.slice(0, 200)) : 'none';
}

/** sha256 manifest digests only: what dockerd records in RepoDigests and what the `.sig` tag is named after. */
export function signatureTag(digest: string): string | undefined {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  return m ? `sha256-${m[1]}.sig` : undefined;
}
