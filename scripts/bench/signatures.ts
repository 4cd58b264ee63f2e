/**
 * signatures (issue 17): what verifying a cosign signature costs, against a real registry on loopback
 * (Debian's docker-registry, plain HTTP), with the daemon's own verifier (app/signature-verdicts.ts)
 * and its verdict cache in a scratch state dir.
 *
 *   - a new digest: the verdict for a digest never seen (the `.sig` manifest and the payload blob
 *     fetched, the signature verified, the payload checked, the verdict written to the state dir);
 *   - a cached verdict: the same question again (what every later container of that image costs);
 *   - floor, in the same run on other digests of the same registry: the two GETs alone (manifest by
 *     tag, blob by digest) with Node's fetch, what no verifier can do without.
 *
 * Targets: new digest p50 ≤ 1.5 × the floor's p50; cached p99 ≤ 0.5 ms. The signatures are made by the
 * cosign stand-in of the tests (openssl) over random digests: the verifier never reads the image itself.
 * No Docker, no daemon, no root needed beyond the bench lock.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { signatureVerifier } from '../../src/app/signature-verdicts.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { formatPolicyError } from '../../src/domain/policy/result.js';
import { generateKeyPair, loadCosignKey, sign } from '../../test/helpers/cosign-stand-in.js';
import { makeFacts } from '../../test/helpers/facts.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { fmtStats, main, onCleanup, printJson, ratio, say, scratchDir, stats, timed } from './lib.js';

const DIGESTS = Number(process.env.DW_BENCH_SIGNATURE_DIGESTS ?? 100);
const TARGET_NEW_RATIO = 1.5;
const TARGET_CACHED_P99_MS = 0.5;
const REPO_PATH = 'bench/app';

if (!Number.isInteger(DIGESTS) || DIGESTS < 10 || DIGESTS > 1000) throw new Error('DW_BENCH_SIGNATURE_DIGESTS must be 10..1000');

await main('signatures', 170, { hostTable: false, docker: false, daemon: false }, async () => {
  const dir = scratchDir();
  const registry = await startRegistry(dir);
  onCleanup('registry', () => registry.stop());
  const pair = await generateKeyPair(dir, 'bench');
  const privatePem = loadCosignKey(pair.privatePath, pair.password);
  const digest = () => `sha256:${randomBytes(32).toString('hex')}`;
  const verified = Array.from({ length: DIGESTS }, digest);
  const floorDigests = Array.from({ length: DIGESTS }, digest);
  say(`signing ${DIGESTS * 2} digests with the stand-in…`);
  for (const d of [...verified, ...floorDigests]) await sign(registry.host, REPO_PATH, d, privatePem);

  const loaded = parsePolicy(
    `version: 1\nimages:\n  insecure-registries: ["${registry.host}"]\n  rules:\n    - { match: "127.0.0.1:*/**", require: { signed-by: [${pair.publicPath}] } }\n`,
    join(dir, 'policy.yaml'),
  );
  if (!loaded.ok) throw new Error(loaded.errors.map(formatPolicyError).join('\n'));
  const images = loaded.policy.images;
  const verifier = signatureVerifier({ stateDir: join(dir, 'state') });
  const repository = `${registry.host}/${REPO_PATH}`;
  const factsOf = (d: string) => makeFacts({ image: { reference: `${repository}@${d}`, id: `sha256:${'ab'.repeat(32)}`, repoTags: [], repoDigests: [`${repository}@${d}`] } });

  const floorOnce = async (d: string) => {
    const manifest = await fetch(`http://${repository.replace(`/${REPO_PATH}`, '')}/v2/${REPO_PATH}/manifests/sha256-${d.slice(7)}.sig`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const layer = ((await manifest.json()) as { layers: Array<{ digest: string }> }).layers[0]!;
    await (await fetch(`http://${registry.host}/v2/${REPO_PATH}/blobs/${layer.digest}`)).arrayBuffer();
  };
  const attach = async (d: string) => {
    const facts = await verifier.attach(factsOf(d), images);
    if (facts.image.signatures?.[0]?.refusal !== null) throw new Error(`not verified: ${JSON.stringify(facts.image.signatures)}`);
  };
  // Warm-up: the first connection, the JIT.
  await floorOnce(floorDigests[0]!);
  await attach(verified[0]!);

  const floor: number[] = [];
  const fresh: number[] = [];
  // Alternating, so both see the same machine load.
  for (let i = 1; i < DIGESTS; i++) {
    floor.push((await timed(() => floorOnce(floorDigests[i]!)))[1]);
    fresh.push((await timed(() => attach(verified[i]!)))[1]);
  }
  const fetchesBefore = verifier.counters.fetched;
  const cached: number[] = [];
  for (let round = 0; round < 5; round++) for (const d of verified) cached.push((await timed(() => attach(d)))[1]);
  if (verifier.counters.fetched !== fetchesBefore) throw new Error('a cached verdict went to the registry');

  const [f, n, c] = [stats(floor), stats(fresh), stats(cached)];
  say(`floor (manifest + blob GET)  ${fmtStats(f)}`);
  say(`new digest (verify)          ${fmtStats(n)}   p50 ratio ${ratio(n.p50, f.p50)} (target ≤ ${TARGET_NEW_RATIO})`);
  say(`cached verdict               ${fmtStats(c)}   target p99 ≤ ${TARGET_CACHED_P99_MS} ms`);
  printJson('signatures', {
    digests: DIGESTS,
    floor: f,
    newDigest: n,
    cached: c,
    newRatio: ratio(n.p50, f.p50),
    targets: { newRatio: TARGET_NEW_RATIO, cachedP99Ms: TARGET_CACHED_P99_MS },
    met: ratio(n.p50, f.p50) <= TARGET_NEW_RATIO && c.p99 <= TARGET_CACHED_P99_MS,
  });
});
