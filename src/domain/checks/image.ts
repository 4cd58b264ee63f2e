import type { Violation } from '../decision.js';
import type { ContainerFacts, ImageFacts } from '../facts.js';
import { compileGlob } from '../glob.js';
import { imageProvenance, repository, type ImageProvenance } from '../image-provenance.js';
import { keySetId, type SignatureQuestion, type SignatureRefusal } from '../image-signature.js';
import type { ImageReference } from '../image-reference.js';
import { compareSpecificity, patternSpecificity } from '../image-specificity.js';
import type { ImageRule, ImagesPolicy } from '../policy/model.js';
import { selectorMatches } from '../selector.js';
import { imageHygieneViolations } from './image-hygiene.js';

/**
 * Image provenance (`images` in the policy): where the image a container was created from may come
 * from. Pure. What is judged is what the image's repo digests prove (see `imageProvenance`): the
 * reference the container was created with (`Config.Image`) when a repo digest backs its repository,
 * else every name the repo digests prove; an image with none is local and `images.local` decides.
 */

/** Why a name was refused; stable, for alerts and tooling. */
export type ImageRefusal =
  | 'invalid-reference'
  | 'local-image'
  | 'registry-not-allowed'
  | 'unofficial-namespace'
  | 'no-matching-rule'
  | 'not-digest-pinned'
  | 'digest-not-in-repo-digests'
  | SignatureRefusal;

/** The judgement of one name the image goes by. */
export interface NameVerdict {
  /** The normalised name; the reference as given when it does not parse; the image id of a local image run by id. */
  readonly name: string;
  /** Every rule whose pattern matches, most specific first: the first decides. */
  readonly matchingRules: readonly ImageRule[];
  /** The deciding rule; null when `images.default` or `images.local` decided, or the name does not parse. */
  readonly rule: ImageRule | null;
  /** `images.rules[i]`, `images.default`, `images.local`; null when nothing could decide (the reference does not parse). */
  readonly decidedBy: string | null;
  readonly refusal: ImageRefusal | null;
  /** Why, as one clause for messages and `policy explain`; names in it are JSON-quoted. */
  readonly why: string;
}

export interface ImageJudgement {
  /** `Config.Image`, as given. */
  readonly reference: string;
  readonly referencedBy: 'name' | 'image id';
  /** How the judged names were found (see `ImageProvenance`). */
  readonly judgedAs: ImageProvenance['judgedAs'];
  /** Index of the `images.exceptions` selector that excuses the container; null when none does. */
  readonly exception: number | null;
  /** What was judged: each name the repo digests prove, or the one verdict of a local or unparsable image. */
  readonly names: readonly NameVerdict[];
  /** The first refused name; null when the image passes or the container is excused. */
  readonly refused: NameVerdict | null;
}

const DOCKER_HUB = 'docker.io';
const LOCAL_IMAGE = 'the image has no repo digest (built, committed or loaded on this host, or a tag of such an image), so nothing shows where it came from';

/**
 * The names are judged one by one and the image passes only when all of them pass: a container
 * created from an image id, or from a name no repo digest backs, could be any of what its image was
 * pulled or pushed as. For digest pinning an image id already fixes the content; a name is pinned
 * when it carries a digest that is among the image's repo digests for that repository.
 */
export function judgeImage(images: ImagesPolicy, facts: ContainerFacts): ImageJudgement {
  const provenance = imageProvenance(facts.image);
  const excusedBy = images.exceptions.findIndex((selector) => selectorMatches(selector, facts));
  const names = judgeNames(images, facts.image, provenance);
  return {
    reference: facts.image.reference,
    referencedBy: provenance.referencedBy,
    judgedAs: provenance.judgedAs,
    exception: excusedBy === -1 ? null : excusedBy,
    names,
    refused: excusedBy === -1 ? (names.find((n) => n.refusal !== null) ?? null) : null,
  };
}

/** The image checks: provenance (one violation naming the deciding rule, the reason and the reference), then hygiene. */
export function imageViolations(images: ImagesPolicy, facts: ContainerFacts): Violation[] {
  return [...provenanceViolations(images, facts), ...imageHygieneViolations(images, facts)];
}

function provenanceViolations(images: ImagesPolicy, facts: ContainerFacts): Violation[] {
  const judgement = judgeImage(images, facts);
  const refused = judgement.refused;
  if (refused === null) return [];
  return [
    {
      check: 'image',
      severity: images.severity,
      action: images.action,
      message: refusalMessage(judgement, refused),
      details: {
        rule: refused.decidedBy,
        pattern: refused.rule?.match.pattern ?? null,
        reason: refused.refusal,
        reference: refused.name,
        given: judgement.reference,
        referencedBy: judgement.referencedBy,
        judgedAs: judgement.judgedAs,
      },
    },
  ];
}

export function ruleLabel(rule: ImageRule): string {
  return `images.rules[${rule.index}]`;
}

function refusalMessage(judgement: ImageJudgement, refused: NameVerdict): string {
  const given = JSON.stringify(judgement.reference);
  const as = JSON.stringify(refused.name);
  if (judgement.referencedBy === 'image id') return `image referenced by image id ${given}, as ${as}, not allowed: ${refused.why}`;
  if (judgement.judgedAs === 'repo digests') return `image ${given}, which no repo digest backs, judged as ${as}, not allowed: ${refused.why}`;
  return `image ${as} not allowed: ${refused.why}`;
}

function judgeNames(images: ImagesPolicy, image: ImageFacts, provenance: ImageProvenance): NameVerdict[] {
  const only = (verdict: Omit<NameVerdict, 'matchingRules' | 'rule'>): NameVerdict[] => [{ ...verdict, matchingRules: [], rule: null }];
  const claimed = provenance.claimed;
  if (claimed && !claimed.ok) {
    return only({ name: image.reference, decidedBy: null, refusal: 'invalid-reference', why: `the reference does not parse: ${claimed.error}` });
  }
  if (provenance.judgedAs === 'local') {
    const name = claimed?.ok ? claimed.ref.normalised : image.id;
    // A local tag of a name whose rule wants a signature: nothing can be verified, whatever images.local allows.
    const matchingRules = claimed?.ok ? rulesMatching(images, claimed.ref) : [];
    const rule = matchingRules[0];
    if (rule && rule.require.signedBy.length > 0) {
      const why = `${ruleLabel(rule)} requires a signature by ${keyNames(rule)}, and ${LOCAL_IMAGE}`;
      return [{ name, matchingRules, rule, decidedBy: ruleLabel(rule), refusal: 'no-repo-digest', why }];
    }
    return only({ name, decidedBy: 'images.local', refusal: images.local === 'deny' ? 'local-image' : null, why: `${LOCAL_IMAGE}; images.local is ${images.local}` });
  }
  return provenance.names.map((name) => judgeName(images, name, provenance, image));
}

/** Every rule whose pattern matches the name, most specific first: the first decides. */
function rulesMatching(images: ImagesPolicy, ref: ImageReference): ImageRule[] {
  return images.rules
    .filter((rule) => rule.match.test(ref.normalised))
    .sort((a, b) => compareSpecificity(patternSpecificity(a.match.pattern), patternSpecificity(b.match.pattern)) || a.index - b.index);
}

/**
 * What a signature verifier must answer before the image can be judged: for every name whose deciding
 * rule requires a signature, each manifest digest the image has in that name's repository, with the
 * rule's keys. Empty when no rule asks (then nothing is fetched).
 */
export function signatureQuestions(images: ImagesPolicy, image: ImageFacts): SignatureQuestion[] {
  const provenance = imageProvenance(image);
  const questions = new Map<string, SignatureQuestion>();
  for (const ref of provenance.names) {
    const keys = rulesMatching(images, ref)[0]?.require.signedBy ?? [];
    if (keys.length === 0) continue;
    const repo = repository(ref);
    for (const digest of repoDigestsIn(provenance, repo)) questions.set(`${repo}@${digest} ${keySetId(keys)}`, { repository: repo, digest, keys });
  }
  return [...questions.values()];
}

/** The manifest digests the image has in `repo` (its RepoDigests there). */
function repoDigestsIn(provenance: ImageProvenance, repo: string): string[] {
  return [...provenance.repoDigests.exact].filter((entry) => entry.startsWith(`${repo}@`)).map((entry) => entry.slice(repo.length + 1));
}

function judgeName(images: ImagesPolicy, ref: ImageReference, provenance: ImageProvenance, image: ImageFacts): NameVerdict {
  const matchingRules = rulesMatching(images, ref);
  const rule = matchingRules[0];
  const verdict = (refusal: ImageRefusal | null, why: string): NameVerdict => ({
    name: ref.normalised,
    matchingRules,
    rule: rule ?? null,
    decidedBy: rule ? ruleLabel(rule) : 'images.default',
    refusal,
    why,
  });
  if (rule === undefined) {
    if (images.default === 'allow') return verdict(null, 'no rule matches; images.default is allow');
    const [refusal, why] = unmatchedRefusal(images.rules, ref);
    return verdict(refusal, `${why}; images.default is deny`);
  }
  const label = `${ruleLabel(rule)} (${JSON.stringify(rule.match.pattern)})`;
  if (rule.require.digestPinned) {
    const problem = pinningProblem(ref, provenance);
    if (problem) return verdict(problem[0], `${label} requires a digest-pinned reference, and ${problem[1]}`);
  }
  if (rule.require.signedBy.length > 0) {
    const [refusal, why] = signatureJudgement(rule, repository(ref), provenance, image);
    if (refusal) return verdict(refusal, `${label} requires a signature by ${keyNames(rule)}, and ${why}`);
    return verdict(null, `allowed by ${label}: ${why}`);
  }
  return verdict(null, `allowed by ${label}`);
}

/** Why no rule matching is a refusal: the registry, or on Docker Hub the namespace, or just this name. */
function unmatchedRefusal(rules: readonly ImageRule[], ref: ImageReference): [ImageRefusal, string] {
  if (!rules.some((rule) => registryPart(rule.match.pattern).test(ref.registry))) {
    return ['registry-not-allowed', `no rule allows the registry ${JSON.stringify(ref.registry)}`];
  }
  if (ref.registry === DOCKER_HUB && !ref.official) {
    const namespace = `${DOCKER_HUB}/${ref.path.split('/', 1)[0]}`;
    return ['unofficial-namespace', `${JSON.stringify(namespace)} is not the official namespace (docker.io/library) and no rule allows it`];
  }
  return ['no-matching-rule', 'no rule matches it'];
}

/** The pattern's first `/` segment, which validation has made a registry (or `**`). */
function registryPart(pattern: string) {
  return compileGlob(pattern.split('/', 1)[0]!);
}

/** Pinned: an image id fixes the content; a name must carry a digest the image has for that repository. */
function pinningProblem(ref: ImageReference, provenance: ImageProvenance): [ImageRefusal, string] | undefined {
  if (provenance.referencedBy === 'image id') return undefined; // every judged name is proven by a repo digest of this very image
  const digest = provenance.claimed?.ok ? provenance.claimed.ref.digest : undefined;
  if (digest === undefined) return ['not-digest-pinned', 'the reference has no @sha256: digest'];
  const repo = repository(ref);
  if (!provenance.repoDigests.exact.has(`${repo}@${digest}`)) {
    return ['digest-not-in-repo-digests', `${digest} is not among the image's repo digests for ${JSON.stringify(repo)}`];
  }
  return undefined;
}

/**
 * A signature requirement, judged on the verifier's verdicts: passes when a signature verifies for one
 * of the image's manifest digests in the repository. A verdict that is missing (nothing was looked up)
 * refuses; an unreachable registry refuses unless the rule says `on-unreachable: allow`.
 */
function signatureJudgement(rule: ImageRule, repo: string, provenance: ImageProvenance, image: ImageFacts): [ImageRefusal | null, string] {
  const digests = repoDigestsIn(provenance, repo);
  if (digests.length === 0) return ['no-repo-digest', `the image has no repo digest in ${JSON.stringify(repo)} to verify`];
  const keySet = keySetId(rule.require.signedBy);
  const verdicts = digests.map((digest) => image.signatures?.find((v) => v.repository === repo && v.digest === digest && v.keySet === keySet));
  const verified = verdicts.find((v) => v?.refusal === null);
  if (verified) return [null, `${verified.digest} is signed by ${JSON.stringify(verified.signedBy)}`];
  const first = verdicts[0];
  if (first === undefined) return ['signature-unverifiable', `no signature verdict was looked up for ${digests[0]}`];
  if (first.refusal === 'signature-unverifiable' && rule.require.onUnreachable === 'allow') return [null, `${first.why}; allowed by on-unreachable: allow`];
  return [first.refusal, `${first.digest}: ${first.why}`];
}

function keyNames(rule: ImageRule): string {
  return rule.require.signedBy.map((key) => JSON.stringify(key.name)).join(' or ');
}
