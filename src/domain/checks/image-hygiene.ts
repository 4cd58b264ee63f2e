import type { Violation } from '../decision.js';
import type { ContainerFacts } from '../facts.js';
import { imageProvenance } from '../image-provenance.js';
import type { CheckSettings, ImageHygieneCheckId, ImagesPolicy } from '../policy/model.js';
import { selectorMatches } from '../selector.js';
import type { Finding } from './runtime.js';

/**
 * Image hygiene (CIS Docker Benchmark §4 items a daemon can see): `images.latest-tag` and
 * `images.healthcheck`. Pure. `images.exceptions` excuse a container from these as from provenance.
 */
export function imageHygieneViolations(images: ImagesPolicy, facts: ContainerFacts): Violation[] {
  if (images.exceptions.some((selector) => selectorMatches(selector, facts))) return [];
  const violations: Violation[] = [];
  const judge = (check: ImageHygieneCheckId, settings: CheckSettings | undefined, find: (facts: ContainerFacts) => Finding | null) => {
    if (settings === undefined) return;
    const finding = find(facts);
    if (finding) violations.push({ check, severity: settings.severity, action: settings.action, ...finding });
  };
  judge('images.latest-tag', images.latestTag, latestTag);
  judge('images.healthcheck', images.healthcheck, imageWithoutHealthcheck);
  return violations;
}

/**
 * Judged on `Config.Image`, the reference the container was created with (and the one a re-create
 * pulls again): `:latest`, or no tag, which is `:latest`. A digest fixes the content whatever the
 * tag; so does an image id. The image's RepoTags are not used: they say what the image is called
 * now (a `latest` tag moves), not what the container asked for.
 */
function latestTag(facts: ContainerFacts): Finding | null {
  const { referencedBy, claimed } = imageProvenance(facts.image);
  // An unparsable reference is the provenance check's to report.
  if (referencedBy === 'image id' || !claimed?.ok) return null;
  const { tag, digest } = claimed.ref;
  if (digest !== undefined || tag !== 'latest') return null;
  const explicit = facts.image.reference.endsWith(':latest');
  return {
    message: explicit ? 'was created from a :latest image reference' : 'was created from an untagged image reference (:latest)',
    details: { reference: facts.image.reference, tag: explicit ? 'latest' : null },
  };
}

/** CIS 4.6: the image's own `Healthcheck` (a container may add one; `healthcheck` judges the container). */
function imageWithoutHealthcheck(facts: ContainerFacts): Finding | null {
  if (facts.healthcheck.image !== false) return null; // has one, or the image could not be inspected
  return { message: 'image has no healthcheck (HEALTHCHECK)', details: { reference: facts.image.reference, imageId: facts.image.id } };
}
