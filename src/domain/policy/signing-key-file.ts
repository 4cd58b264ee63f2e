import { createHash, createPublicKey } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/**
 * The public keys `signed-by` names, read while the policy is validated so a bad key is an error at the
 * line that names it. Accepted: ECDSA P-256 in a PEM SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`),
 * what `cosign generate-key-pair` writes as cosign.pub. Cosign pairs every other key type with a hash
 * or padding that has changed between its versions (RSA PKCS#1 v1.5 or PSS, P-384 with SHA-256 or
 * SHA-384, Ed25519 pure or pre-hashed); a key we would verify differently from the signer's cosign
 * would refuse good images or, worse, be a second meaning of one signature, so those are refused here.
 */

/** A PEM public key is a few hundred bytes; this bounds what a mistaken path (a log file) costs. */
const MAX_KEY_FILE_BYTES = 16 * 1024;

export type KeyResult = { readonly ok: true; readonly pem: string; readonly fingerprint: string } | { readonly ok: false; readonly error: string };

/** Reads a key file: a regular file of at most 16 KiB, opened so a FIFO cannot block the reader. */
export function readSigningKeyFile(path: string): KeyResult {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    return { ok: false, error: `cannot read the public key ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}` };
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { ok: false, error: `${JSON.stringify(path)} is not a regular file; expected a PEM public key` };
    if (stat.size > MAX_KEY_FILE_BYTES) return { ok: false, error: `${JSON.stringify(path)} is ${stat.size} bytes; a PEM public key is far below ${MAX_KEY_FILE_BYTES}` };
    const buffer = Buffer.alloc(stat.size);
    const read = readSync(fd, buffer, 0, stat.size, 0);
    return parseSigningKey(buffer.subarray(0, read).toString('utf8'), path);
  } finally {
    closeSync(fd);
  }
}

/** PEM text → the key as plain data (PEM re-exported, fingerprint), or why it is not an accepted key. */
export function parseSigningKey(text: string, where: string): KeyResult {
  if (!text.includes('-----BEGIN PUBLIC KEY-----')) {
    const hint = text.includes('PRIVATE KEY') ? ' (this is a private key: give the public one, cosign.pub)' : '';
    return { ok: false, error: `${JSON.stringify(where)} holds no PEM public key ("-----BEGIN PUBLIC KEY-----")${hint}` };
  }
  let key;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (error) {
    return { ok: false, error: `${JSON.stringify(where)}: the public key does not parse (${(error as Error).message})` };
  }
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const type = key.asymmetricKeyType === 'ec' ? `ECDSA ${curve ?? 'of an unknown curve'}` : (key.asymmetricKeyType ?? 'unknown');
    return { ok: false, error: `${JSON.stringify(where)} holds an ${type} key; only ECDSA P-256 keys (cosign generate-key-pair) are accepted` };
  }
  const der = key.export({ type: 'spki', format: 'der' });
  return { ok: true, pem: key.export({ type: 'spki', format: 'pem' }).toString(), fingerprint: createHash('sha256').update(der).digest('hex') };
}
