import type { ImageFacts } from './facts.js';
import { boundedMemo } from './bounded-memo.js';
import { imageIdHex, parseImageReference, type ImageReference, type ImageReferenceResult } from './image-reference.js';

/**
 * Where a container's image demonstrably comes from. A name proves nothing: `docker tag` gives any
 * image any name (`docker tag evil busybox:latest`). A repository is proven only by a repo digest
 * (`RepoDigests`): dockerd records `repository@digest` when it pulls the image from that repository
 * or pushes it there, and nothing else sets one (the tag API refuses digest references; `docker
 * load`, `build` and `commit` record none). Image patterns, in `images.rules` and in every selector,
 * are matched against the names this proves, never against a name as given. Pure.
 */
export interface ImageProvenance {
  readonly referencedBy: 'name' | 'image id';
  /** `Config.Image` parsed as a name; undefined when the container was created from an image id. */
  readonly claimed: ImageReferenceResult | undefined;
  /**
   * How `names` were found:
   * - `reference`: the name the container was created with, whose repository is among the repo digests;
   * - `repo digests`: created from an image id or from a name the repo digests do not back (a
   *   retag): every repo tag whose repository is among the repo digests, and every repo digest;
   * - `local`: the image has no repo digest (built, committed or loaded here, or a tag of such an image);
   * - `invalid`: the reference is neither an image id nor a name that parses.
   */
  readonly judgedAs: 'reference' | 'repo digests' | 'local' | 'invalid';
  /** The proven names; empty when `local` or `invalid`. */
  readonly names: readonly ImageReference[];
  readonly repoDigests: RepoDigests;
}

/** The image's repo digests, normalised: exact `repository@digest` entries, and the repositories they are in. */
export interface RepoDigests {
  readonly exact: ReadonlySet<string>;
  readonly repositories: ReadonlySet<string>;
}

/** Per image facts, so that every selector and rule of one evaluation reads one parse. */
const computed = new WeakMap<ImageFacts, ImageProvenance>();
/**
 * By what it is judged from, so that the containers of one image (each with facts of its own) share
 * one parse: a reconcile of 1,000 containers of a few images parsed each image's names 1,000 times.
 * At most 512 images kept. A key over 4 KiB is judged each time, not kept: a create request the gate
 * judges names any image text it likes (dockerd refuses a bad reference only after the gate), and 512
 * of them must not hold the request body's size each.
 */
const byContent = boundedMemo<ImageProvenance>(512, 4096);

export function imageProvenance(image: ImageFacts): ImageProvenance {
  let provenance = computed.get(image);
  if (provenance === undefined) {
    provenance = byContent(JSON.stringify([image.reference, image.id, image.repoTags, image.repoDigests]), () => judgeProvenance(image));
    computed.set(image, provenance);
  }
  return provenance;
}

function judgeProvenance(image: ImageFacts): ImageProvenance {
  const repoDigests = parseRepoDigests(image.repoDigests);
  const byId = isImageIdReference(image);
  const claimed = byId ? undefined : parseImageReference(image.reference);
  const provenance = { referencedBy: byId ? 'image id' : 'name', claimed, repoDigests } as const;
  if (claimed && !claimed.ok) return { ...provenance, judgedAs: 'invalid', names: [] };
  if (claimed?.ok && repoDigests.repositories.has(repository(claimed.ref))) return { ...provenance, judgedAs: 'reference', names: [claimed.ref] };
  const names = uniqueNames([...image.repoTags, ...image.repoDigests].flatMap((text) => {
    const parsed = parseImageReference(text);
    return parsed.ok && repoDigests.repositories.has(repository(parsed.ref)) ? [parsed.ref] : [];
  }));
  return { ...provenance, judgedAs: names.length > 0 ? 'repo digests' : 'local', names };
}

/** `registry/path`: what a repo digest proves. */
export function repository(ref: ImageReference): string {
  return `${ref.registry}/${ref.path}`;
}

/** The image as logs and reports name it: the normalised reference, or what was given when it is not a name that parses. */
export function imageName(image: ImageFacts): string {
  const claimed = imageProvenance(image).claimed;
  return claimed?.ok ? claimed.ref.normalised : image.reference;
}

/** A full id, or a prefix of this image's id that is not also one of its names (dockerd tries the name first). */
function isImageIdReference(image: ImageFacts): boolean {
  const hex = imageIdHex(image.reference);
  if (hex === undefined) return false;
  const asName = parseImageReference(image.reference);
  if (!asName.ok) return true;
  if (!image.id.startsWith(`sha256:${hex}`)) return false;
  return !image.repoTags.some((tag) => {
    const parsed = parseImageReference(tag);
    return parsed.ok && parsed.ref.normalised === asName.ref.normalised;
  });
}

function parseRepoDigests(texts: readonly string[]): RepoDigests {
  const refs = texts.flatMap((text) => {
    const parsed = parseImageReference(text);
    return parsed.ok && parsed.ref.digest !== undefined ? [parsed.ref] : [];
  });
  return { exact: new Set(refs.map((r) => `${repository(r)}@${r.digest}`)), repositories: new Set(refs.map(repository)) };
}

function uniqueNames(refs: readonly ImageReference[]): ImageReference[] {
  return refs.filter((ref, i) => refs.findIndex((other) => other.normalised === ref.normalised) === i);
}
