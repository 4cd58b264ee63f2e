import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { checkPayload, COSIGN_SIGNATURE_ANNOTATION, keySetId, signatureTag, type SignatureQuestion, type SignatureVerdict } from '../../domain/image-signature.js';
import { NotFound, type RegistryClient } from './registry-client.js';

/**
 * Reads and checks the cosign signatures of one manifest digest (cosign's `.sig` tag format): the
 * manifest tagged `sha256-<hex>.sig` in the image's repository, whose layers are simple-signing
 * payloads, each with its base64 ECDSA signature in the `dev.cosignproject.cosign/signature`
 * annotation. Each payload is verified over its exact bytes with the policy's keys before it is
 * parsed; a verified payload must then name the digest and the repository (domain/image-signature).
 * Keyed and offline: no transparency log, no certificate, no Fulcio identity is consulted.
 */

/** Signature layers looked at; cosign appends one per `cosign sign`, so a real image has a handful. */
const MAX_SIGNATURE_LAYERS = 64;
/** A simple-signing payload is a few hundred bytes (more with annotations). */
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_SIGNATURE_CHARS = 1024;

interface SignatureLayer {
  readonly digest: string;
  readonly signature: string;
}

/** The verdict on one question; an unreachable or misbehaving registry is `signature-unverifiable`. */
export async function verifyCosignSignature(client: RegistryClient, question: SignatureQuestion): Promise<SignatureVerdict> {
  const answer = (refusal: SignatureVerdict['refusal'], why: string, signedBy: string | null = null): SignatureVerdict => ({
    repository: question.repository,
    digest: question.digest,
    keySet: keySetId(question.keys),
    refusal,
    why,
    signedBy,
  });
  const tag = signatureTag(question.digest);
  if (tag === undefined) return answer('unsigned', `${JSON.stringify(question.digest)} is not a sha256 digest, which cosign's .sig tags are named after`);
  const slash = question.repository.indexOf('/');
  const [registry, path] = [question.repository.slice(0, slash), question.repository.slice(slash + 1)];
  let layers: SignatureLayer[];
  try {
    layers = signatureLayers(await client.manifest(registry, path, tag));
  } catch (error) {
    if (error instanceof NotFound) return answer('unsigned', `the registry has no signature (no ${tag} tag)`);
    return answer('signature-unverifiable', `the signatures could not be read from ${JSON.stringify(registry)} (${(error as Error).message})`);
  }
  if (layers.length === 0) return answer('unsigned', `${tag} holds no cosign signature layer`);
  const keys = question.keys.map((key) => ({ key, object: createPublicKey(key.pem) }));
  let problem: [NonNullable<SignatureVerdict['refusal']>, string] = ['signed-by-unknown-key', `none of its ${layers.length} signature(s) verifies with the key(s): signed by another key, or the payload was changed after signing`];
  for (const layer of layers.slice(0, MAX_SIGNATURE_LAYERS)) {
    const signature = decodeSignature(layer.signature);
    if (signature === undefined) {
      problem = ['signature-invalid', 'a signature annotation is not a base64 signature'];
      continue;
    }
    let payload: Buffer;
    try {
      payload = await client.blob(registry, path, layer.digest, MAX_PAYLOAD_BYTES);
    } catch (error) {
      return answer('signature-unverifiable', `a signed payload could not be read from ${JSON.stringify(registry)} (${(error as Error).message})`);
    }
    if (`sha256:${createHash('sha256').update(payload).digest('hex')}` !== layer.digest) {
      problem = ['signature-invalid', 'a payload does not match its layer digest'];
      continue;
    }
    const signer = keys.find(({ object }) => verifiesWith(object, payload, signature));
    if (signer === undefined) continue;
    const checked = checkPayload(payload, question.repository, question.digest);
    if (checked.ok) return answer(null, `signed by ${JSON.stringify(signer.key.name)}`, signer.key.name);
    problem = [checked.refusal, checked.why];
  }
  return answer(...problem);
}

/** ECDSA over SHA-256, the DER signature cosign writes. A malformed signature is not a match, never a throw. */
function verifiesWith(key: KeyObject, payload: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', payload, key, signature);
  } catch {
    return false;
  }
}

function decodeSignature(text: string): Buffer | undefined {
  if (text.length > MAX_SIGNATURE_CHARS || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** The manifest's layers that carry a cosign signature; a manifest that is not one refuses nothing but has none. */
function signatureLayers(manifest: Buffer): SignatureLayer[] {
  const document = JSON.parse(manifest.toString('utf8')) as { layers?: unknown };
  if (!Array.isArray(document.layers)) return [];
  return document.layers.flatMap((layer: unknown) => {
    const { digest, annotations } = (layer ?? {}) as { digest?: unknown; annotations?: Record<string, unknown> };
    const signature = typeof annotations === 'object' && annotations !== null ? annotations[COSIGN_SIGNATURE_ANNOTATION] : undefined;
    return typeof digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(digest) && typeof signature === 'string' ? [{ digest, signature }] : [];
  });
}
