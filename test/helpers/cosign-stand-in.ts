/**
 * A STAND-IN for `cosign generate-key-pair` and `cosign sign --key` (keyed, no transparency log), for
 * tests only: there is no cosign on these machines (not packaged in Debian; Debian's skopeo and podman
 * are built with sigstore disabled). It follows cosign's formats to the letter:
 * - keys: `cosign.pub` (PEM SubjectPublicKeyInfo, ECDSA P-256) and `cosign.key`, the encrypted
 *   private key (`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----`: JSON with an scrypt KDF and a NaCl
 *   secretbox around the PKCS#8 DER key, go-securesystemslib's `encrypted` package); `loadCosignKey`
 *   reads such a file, so an admin's real cosign keys can sign here too;
 * - signing: the simple-signing payload cosign writes (Go's json.Marshal of its struct, so this exact
 *   byte layout), signed with ECDSA P-256 / SHA-256 by the `openssl` CLI (no crypto of ours), the base64
 *   DER signature in the layer annotation `dev.cosignproject.cosign/signature`, the OCI manifest pushed
 *   as the tag `sha256-<hex>.sig` through the registry API (appending to the signatures already there).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, scryptSync, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nacl from 'tweetnacl';

const run = promisify(execFile);

const PRIVATE_KEY_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** cosign's scrypt parameters (go-securesystemslib encrypted.NewEncryptionKey with its defaults). */
const SCRYPT = { N: 32768, r: 8, p: 1 };

export interface CosignKeyPair {
  /** Path of cosign.pub. */
  readonly publicPath: string;
  /** Path of cosign.key (encrypted with `password`). */
  readonly privatePath: string;
  readonly password: string;
}

/** `cosign generate-key-pair` into `dir`: the key made by `openssl`, written in cosign's two files. */
export async function generateKeyPair(dir: string, name: string, password = 'stand-in'): Promise<CosignKeyPair> {
  const scratch = mkdtempSync(join(tmpdir(), 'dw-cosign-'));
  try {
    const ec = join(scratch, 'ec.pem');
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', ec]);
    const pkcs8 = createPrivateKey(readFileSync(ec)).export({ type: 'pkcs8', format: 'der' });
    const publicPath = join(dir, `${name}.pub`);
    const privatePath = join(dir, `${name}.key`);
    const pub = await run('openssl', ['pkey', '-in', ec, '-pubout']);
    writeFileSync(publicPath, pub.stdout);
    writeFileSync(privatePath, encryptPrivateKey(pkcs8, password));
    return { publicPath, privatePath, password };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function encryptPrivateKey(pkcs8: Buffer, password: string): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  const key = scryptSync(password, salt, 32, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 });
  const sealed = nacl.secretbox(new Uint8Array(pkcs8), new Uint8Array(nonce), new Uint8Array(key));
  const document = {
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  };
  return pem(PRIVATE_KEY_LABEL, Buffer.from(JSON.stringify(document)));
}

/** Reads cosign.key (also the older `ENCRYPTED COSIGN PRIVATE KEY` label) into a PKCS#8 PEM private key. */
export function loadCosignKey(path: string, password: string): string {
  const text = readFileSync(path, 'utf8');
  const m = /-----BEGIN ENCRYPTED (?:SIGSTORE|COSIGN) PRIVATE KEY-----([\s\S]+?)-----END/.exec(text);
  if (!m) throw new Error(`${path} is not a cosign encrypted private key`);
  const document = JSON.parse(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64').toString('utf8')) as {
    kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
    cipher: { name: string; nonce: string };
    ciphertext: string;
  };
  if (document.kdf.name !== 'scrypt' || document.cipher.name !== 'nacl/secretbox') throw new Error(`${path}: unsupported kdf or cipher`);
  const { N, r, p } = document.kdf.params;
  const key = scryptSync(password, Buffer.from(document.kdf.salt, 'base64'), 32, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  const opened = nacl.secretbox.open(new Uint8Array(Buffer.from(document.ciphertext, 'base64')), new Uint8Array(Buffer.from(document.cipher.nonce, 'base64')), new Uint8Array(key));
  if (opened === null) throw new Error(`${path}: wrong password or corrupt key`);
  return createPrivateKey({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The public key of a private one, PEM (what `cosign public-key` prints). */
export function publicKeyOf(privatePem: string): string {
  return createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }).toString();
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g)!;
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The simple-signing payload cosign signs, byte for byte: Go's json.Marshal of cosign's payload struct. */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    `{"critical":{"identity":{"docker-reference":${JSON.stringify(dockerReference)}},"image":{"docker-manifest-digest":${JSON.stringify(digest)}},"type":"cosign container image signature"},"optional":null}`,
  );
}

/** ECDSA P-256 / SHA-256 over the exact bytes, by `openssl dgst -sign`: the DER signature, base64. */
export async function signBytes(privatePem: string, payload: Buffer): Promise<string> {
  const scratch = mkdtempSync(join(tmpdir(), 'dw-cosign-'));
  try {
    const keyFile = join(scratch, 'key.pem');
    const payloadFile = join(scratch, 'payload');
    writeFileSync(keyFile, privatePem, { mode: 0o600 });
    writeFileSync(payloadFile, payload);
    const { stdout } = await run('openssl', ['dgst', '-sha256', '-sign', keyFile, payloadFile], { encoding: 'buffer' });
    return stdout.toString('base64');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export interface SignOptions {
  /** What the payload names; default: the image's own repository and digest. */
  readonly dockerReference?: string;
  readonly signedDigest?: string;
  /** Changes the payload after it was signed (a tampered signature). */
  readonly tamper?: (payload: Buffer) => Buffer;
}

/**
 * `cosign sign --key cosign.key REGISTRY/PATH@DIGEST` against a plain-HTTP registry: signs, then
 * pushes the payload blob, the config and the manifest tagged `sha256-<hex>.sig` (with the layers already there).
 */
export async function sign(registry: string, path: string, digest: string, privatePem: string, options: SignOptions = {}): Promise<void> {
  const signed = simpleSigningPayload(options.dockerReference ?? `${registry}/${path}`, options.signedDigest ?? digest);
  const signature = await signBytes(privatePem, signed);
  const payload = options.tamper ? options.tamper(signed) : signed;
  const base = `http://${registry}/v2/${path}`;
  const tag = `sha256-${digest.slice('sha256:'.length)}.sig`;
  const layers = await existingLayers(base, tag);
  layers.push({ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', size: payload.length, digest: await pushBlob(base, payload), annotations: { 'dev.cosignproject.cosign/signature': signature } });
  const config = Buffer.from(
    JSON.stringify({ architecture: '', created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }, config: {} }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', size: config.length, digest: await pushBlob(base, config) },
    layers,
  };
  const put = await fetch(`${base}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': manifest.mediaType }, body: JSON.stringify(manifest) });
  if (put.status !== 201) throw new Error(`manifest push: ${put.status} ${await put.text()}`);
}

interface Layer {
  mediaType: string;
  size: number;
  digest: string;
  annotations: Record<string, string>;
}

async function existingLayers(base: string, tag: string): Promise<Layer[]> {
  const response = await fetch(`${base}/manifests/${tag}`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  if (response.status === 404) return [];
  if (response.status !== 200) throw new Error(`manifest read: ${response.status}`);
  return ((await response.json()) as { layers: Layer[] }).layers;
}

/** The monolithic upload: POST for a location, PUT with the digest. */
async function pushBlob(base: string, bytes: Buffer): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'Content-Type': 'application/octet-stream' }, body: bytes });
  if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
  return digest;
}
