import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DockerEngine } from '../adapters/docker/engine.js';
import { verifyCosignSignature } from '../adapters/registry/cosign-signatures.js';
import { RegistryClient } from '../adapters/registry/registry-client.js';
import { signatureQuestions } from '../domain/checks/image.js';
import type { ContainerFacts } from '../domain/facts.js';
import { verdictCacheKey, type SignatureQuestion, type SignatureVerdict } from '../domain/image-signature.js';
import type { ImagesPolicy, Policy } from '../domain/policy/model.js';

/**
 * Signature verdicts as facts: before an image is judged, every signature its policy asks about is
 * looked up (once per digest, repository and key set: the cache) and attached to the image's facts,
 * so the pure image check judges them like any other fact. A verified verdict cannot change (the
 * signature verifies, for ever, with keys named by their bytes), so it is kept, in the state dir
 * across restarts. A refusal can (a signature may be pushed later), so it is kept only briefly in
 * memory, which spares the registry the burst of events one container makes; an unreachable
 * registry's verdict is not kept at all.
 */

export interface SignatureVerifier {
  /** The facts with `image.signatures` answering what `images` asks about them (unchanged when nothing is asked). */
  attach(facts: ContainerFacts, images: ImagesPolicy): Promise<ContainerFacts>;
  readonly counters: { readonly verified: number; readonly cached: number; readonly fetched: number };
}

export interface VerifierOptions {
  /** Where verified verdicts persist; null: memory only (the CLI). */
  readonly stateDir: string | null;
  readonly requestTimeoutMs?: number;
  readonly now?: () => number;
}

const FILE = 'signature-verdicts.json';
const FORMAT = 1;
/** Verified verdicts kept; past it the oldest go (each is ~200 bytes on disk). */
export const MAX_CACHED_VERDICTS = 10_000;
/** How long a refusal stands before the registry is asked again. */
const REFUSAL_TTL_MS = 30_000;
const REQUEST_TIMEOUT_MS = 5_000;
const MAX_STATE_BYTES = 8 * 1024 * 1024;

export function signatureVerifier(options: VerifierOptions): SignatureVerifier {
  const now = options.now ?? Date.now;
  const verified = loadVerified(options.stateDir);
  const refused = new Map<string, { verdict: SignatureVerdict; until: number }>();
  const inFlight = new Map<string, Promise<SignatureVerdict>>();
  const counters = { verified: 0, cached: 0, fetched: 0 };
  let client: { key: string; client: RegistryClient } | null = null;
  let policySeen: ImagesPolicy | null = null;

  const clientFor = (images: ImagesPolicy): RegistryClient => {
    const key = JSON.stringify([images.registryAuth, images.insecureRegistries]);
    if (client?.key !== key) client = { key, client: new RegistryClient({ authFile: images.registryAuth, insecure: images.insecureRegistries, timeoutMs: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS }) };
    return client.client;
  };

  const answer = async (question: SignatureQuestion, images: ImagesPolicy): Promise<SignatureVerdict> => {
    const key = verdictCacheKey(question);
    const refusal = refused.get(key);
    const kept = verified.get(key) ?? (refusal && refusal.until > now() ? refusal.verdict : undefined);
    if (kept) {
      counters.cached++;
      return kept;
    }
    let pending = inFlight.get(key);
    if (pending === undefined) {
      counters.fetched++;
      pending = verifyCosignSignature(clientFor(images), question)
        .then((verdict) => {
          if (verdict.refusal === null) {
            counters.verified++;
            remember(verified, key, verdict);
            try {
              saveVerified(options.stateDir, verified);
            } catch {
              // The verdict stands; only the next start has to fetch it again.
            }
          } else if (verdict.refusal !== 'signature-unverifiable') {
            refused.set(key, { verdict, until: now() + REFUSAL_TTL_MS });
          }
          return verdict;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  };

  return {
    counters,
    async attach(facts, images) {
      // A new policy looks again at what it refuses (the keys may be the same, the admin may have signed meanwhile).
      if (images !== policySeen) refused.clear();
      policySeen = images;
      const questions = signatureQuestions(images, facts.image);
      if (questions.length === 0) return facts;
      const signatures = await Promise.all(questions.map((q) => answer(q, images)));
      return { ...facts, image: { ...facts.image, signatures } };
    },
  };
}

/** The engine, its facts carrying signature verdicts for the current policy: every path judges what it reads. */
export function withSignatureVerdicts<E extends Pick<DockerEngine, 'readFacts' | 'factsOf'>>(engine: E, verifier: SignatureVerifier, policy: () => Policy): E {
  return {
    ...engine,
    readFacts: async (id, execId) => {
      const facts = await engine.readFacts(id, execId);
      return facts && verifier.attach(facts, policy().images);
    },
    factsOf: async (inspect) => verifier.attach(await engine.factsOf(inspect), policy().images),
  };
}

function remember(map: Map<string, SignatureVerdict>, key: string, verdict: SignatureVerdict): void {
  map.delete(key);
  map.set(key, verdict);
  while (map.size > MAX_CACHED_VERDICTS) map.delete(map.keys().next().value!);
}

/** Verified verdicts of an earlier run; a missing, unreadable or foreign file is an empty cache (verdicts are fetched again). */
function loadVerified(stateDir: string | null): Map<string, SignatureVerdict> {
  const map = new Map<string, SignatureVerdict>();
  if (stateDir === null) return map;
  try {
    const bytes = readFileSync(join(stateDir, FILE));
    if (bytes.length > MAX_STATE_BYTES) return map;
    const state = JSON.parse(bytes.toString('utf8')) as { format?: unknown; verdicts?: unknown };
    if (state.format !== FORMAT || !Array.isArray(state.verdicts)) return map;
    for (const entry of state.verdicts.slice(-MAX_CACHED_VERDICTS) as unknown[]) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || !isVerified(entry[1])) continue;
      map.set(entry[0], entry[1]);
    }
  } catch {
    // Nothing kept: every verdict is fetched again.
  }
  return map;
}

function isVerified(value: unknown): value is SignatureVerdict {
  const v = value as Partial<SignatureVerdict> | null;
  return typeof v === 'object' && v !== null && v.refusal === null && typeof v.repository === 'string' && typeof v.digest === 'string' && typeof v.keySet === 'string' && typeof v.why === 'string' && typeof v.signedBy === 'string';
}

/** Written to a temporary file and renamed, so a crash never leaves half a file. */
function saveVerified(stateDir: string | null, map: Map<string, SignatureVerdict>): void {
  if (stateDir === null) return;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `${FILE}.tmp`);
  writeFileSync(tmp, `${JSON.stringify({ format: FORMAT, verdicts: [...map] })}\n`, { mode: 0o600 });
  renameSync(tmp, join(stateDir, FILE));
}
