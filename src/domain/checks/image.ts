import type { Violation } from '../decision.js';
import type { ContainerFacts, ImageFacts } from '../facts.js';
import { compileGlob } from '../glob.js';
import { imageIdHex, parseImageReference, type ImageReference } from '../image-reference.js';
import { compareSpecificity, patternSpecificity } from '../image-specificity.js';
import type { ImageRule, ImagesPolicy } from '../policy/model.js';
import { selectorMatches } from '../selector.js';

/**
 * Image provenance (`images` in the policy): where the image a container was created from may come
 * from. Pure. The reference judged is `Config.Image`, as the container was created; a container
 * created from an image id is judged under every name its image has (see `judgeImage`).
 */

/** Why a name was refused; stable, for alerts and tooling. */
export type ImageRefusal =
  | 'invalid-reference'
  | 'unnamed-image'
  | 'registry-not-allowed'
  | 'unofficial-namespace'
  | 'no-matching-rule'
  | 'not-digest-pinned'
  | 'digest-not-in-repo-digests';

/** The judgement of one name the image goes by. */
export interface NameVerdict {
  /** The normalised reference; as given when it does not parse; the image id for an image without names. */
  readonly name: string;
  /** Every rule whose pattern matches, most specific first: the first decides. */
  readonly matchingRules: readonly ImageRule[];
  /** The deciding rule; null when `images.default` decided, or the name does not parse. */
  readonly rule: ImageRule | null;
  readonly refusal: ImageRefusal | null;
  /** Why, as one clause for messages and `policy explain`; names in it are JSON-quoted. */
  readonly why: string;
}

export interface ImageJudgement {
  /** `Config.Image`, as given. */
  readonly reference: string;
  readonly referencedBy: 'name' | 'image id';
  /** Index of the `images.exceptions` selector that excuses the container; null when none does. */
  readonly exception: number | null;
  /** What was judged: the reference, or, for an image id, each of the image's repo tags and digests. */
  readonly names: readonly NameVerdict[];
  /** The first refused name; null when the image passes or the container is excused. */
  readonly refused: NameVerdict | null;
}

const DOCKER_HUB = 'docker.io';

/**
 * A container created from an image id (`docker run sha256:…`, `docker run 0123ab`) carries no
 * name: it is judged under every repo tag and repo digest of its image, and passes only when all of
 * them pass — any of them could be what it was pulled as. For digest pinning the id already fixes
 * the content, so a name counts as pinned when the image has a repo digest in that repository. An
 * image with no names at all is judged by `images.default`.
 */
export function judgeImage(images: ImagesPolicy, facts: ContainerFacts): ImageJudgement {
  const byId = isImageIdReference(facts.image);
  const digests = knownDigests(facts.image.repoDigests);
  const names = byId ? judgeImageNames(images, facts.image, digests) : [judgeName(images, facts.image.reference, digests, false)];
  const excusedBy = images.exceptions.findIndex((selector) => selectorMatches(selector, facts));
  return {
    reference: facts.image.reference,
    referencedBy: byId ? 'image id' : 'name',
    exception: excusedBy === -1 ? null : excusedBy,
    names,
    refused: excusedBy === -1 ? (names.find((n) => n.refusal !== null) ?? null) : null,
  };
}

/** The image check: no violation, or one naming the deciding rule, the reason and the reference. */
export function imageViolations(images: ImagesPolicy, facts: ContainerFacts): Violation[] {
  const judgement = judgeImage(images, facts);
  const refused = judgement.refused;
  if (refused === null) return [];
  const message =
    judgement.referencedBy === 'image id'
      ? `image referenced by image id ${JSON.stringify(judgement.reference)}, as ${JSON.stringify(refused.name)}, not allowed: ${refused.why}`
      : `image ${JSON.stringify(refused.name)} not allowed: ${refused.why}`;
  return [
    {
      check: 'image',
      severity: images.severity,
      action: images.action,
      message,
      details: {
        rule: decidedBy(refused),
        pattern: refused.rule?.match.pattern ?? null,
        reason: refused.refusal,
        reference: refused.name,
        given: judgement.reference,
        referencedBy: judgement.referencedBy,
      },
    },
  ];
}

export function ruleLabel(rule: ImageRule): string {
  return `images.rules[${rule.index}]`;
}

/** `images.rules[i]`, `images.default`, or null when nothing could decide (the name does not parse). */
export function decidedBy(verdict: NameVerdict): string | null {
  if (verdict.rule) return ruleLabel(verdict.rule);
  return verdict.refusal === 'invalid-reference' ? null : 'images.default';
}

/** A full id, or a prefix of this image's id that is not also one of its names (dockerd tries the name first). */
function isImageIdReference(image: ImageFacts): boolean {
  const hex = imageIdHex(image.reference);
  if (hex === undefined) return false;
  const asName = parseImageReference(image.reference);
  if (!asName.ok) return true;
  if (!image.id.startsWith(`sha256:${hex}`)) return false;
  return !image.repoTags.some((tag) => normalised(tag) === asName.ref.normalised);
}

function judgeImageNames(images: ImagesPolicy, image: ImageFacts, digests: KnownDigests): NameVerdict[] {
  const verdicts = [...image.repoTags, ...image.repoDigests].map((name) => judgeName(images, name, digests, true));
  const unique = verdicts.filter((v, i) => verdicts.findIndex((w) => w.name === v.name) === i);
  if (unique.length > 0) return unique;
  const why = `the image has no repo tags or digests; images.default is ${images.default}`;
  return [{ name: image.id, matchingRules: [], rule: null, refusal: images.default === 'deny' ? 'unnamed-image' : null, why }];
}

function judgeName(images: ImagesPolicy, text: string, digests: KnownDigests, byId: boolean): NameVerdict {
  const parsed = parseImageReference(text);
  if (!parsed.ok) return { name: text, matchingRules: [], rule: null, refusal: 'invalid-reference', why: `the reference does not parse: ${parsed.error}` };
  const ref = parsed.ref;
  const matchingRules = images.rules
    .filter((rule) => rule.match.test(ref.normalised))
    .sort((a, b) => compareSpecificity(patternSpecificity(a.match.pattern), patternSpecificity(b.match.pattern)) || a.index - b.index);
  const rule = matchingRules[0];
  const verdict = (refusal: ImageRefusal | null, why: string): NameVerdict => ({ name: ref.normalised, matchingRules, rule: rule ?? null, refusal, why });
  if (rule === undefined) {
    if (images.default === 'allow') return verdict(null, 'no rule matches; images.default is allow');
    const [refusal, why] = unmatchedRefusal(images.rules, ref);
    return verdict(refusal, `${why}; images.default is deny`);
  }
  const label = `${ruleLabel(rule)} (${JSON.stringify(rule.match.pattern)})`;
  if (rule.require.digestPinned) {
    const problem = pinningProblem(ref, digests, byId);
    if (problem) return verdict(problem[0], `${label} requires a digest-pinned reference, and ${problem[1]}`);
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

/** The image's repo digests, normalised: exact `repository@digest` entries and the repositories they are in. */
interface KnownDigests {
  readonly exact: ReadonlySet<string>;
  readonly repositories: ReadonlySet<string>;
}

function knownDigests(repoDigests: readonly string[]): KnownDigests {
  const refs = repoDigests.flatMap((text) => {
    const parsed = parseImageReference(text);
    return parsed.ok && parsed.ref.digest !== undefined ? [parsed.ref] : [];
  });
  return { exact: new Set(refs.map((r) => `${repository(r)}@${r.digest}`)), repositories: new Set(refs.map(repository)) };
}

function pinningProblem(ref: ImageReference, digests: KnownDigests, byId: boolean): [ImageRefusal, string] | undefined {
  const repo = repository(ref);
  if (byId) return digests.repositories.has(repo) ? undefined : ['not-digest-pinned', `the image has no repo digest in ${JSON.stringify(repo)}`];
  if (ref.digest === undefined) return ['not-digest-pinned', 'the reference has no @sha256: digest'];
  if (!digests.exact.has(`${repo}@${ref.digest}`)) {
    return ['digest-not-in-repo-digests', `${ref.digest} is not among the image's repo digests for ${JSON.stringify(repo)}`];
  }
  return undefined;
}

function repository(ref: ImageReference): string {
  return `${ref.registry}/${ref.path}`;
}

function normalised(text: string): string | undefined {
  const parsed = parseImageReference(text);
  return parsed.ok ? parsed.ref.normalised : undefined;
}
