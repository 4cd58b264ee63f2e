/**
 * How specific an image pattern is, so that of several `images.rules` matching one reference the most
 * specific decides. Compared in this order:
 *   1. the longer literal prefix (characters before the first `*` or `?`): the registry, then the
 *      namespace, are what provenance is about, so `docker.io/library/*` beats `docker.io/**`;
 *   2. then more literal characters in all (`docker.io/library/*:1` beats `docker.io/library/*`);
 *   3. then fewer `**` (`docker.io/library/*` beats `docker.io/library/**`);
 *   4. then the earlier rule (left to the caller: rules arrive in policy order).
 */
export interface Specificity {
  readonly literalPrefix: number;
  readonly literals: number;
  readonly doubleStars: number;
}

export function patternSpecificity(pattern: string): Specificity {
  const chars = [...pattern];
  const firstWildcard = chars.findIndex((c) => c === '*' || c === '?');
  return {
    literalPrefix: firstWildcard === -1 ? chars.length : firstWildcard,
    literals: chars.filter((c) => c !== '*' && c !== '?').length,
    doubleStars: pattern.match(/\*\*+/g)?.length ?? 0,
  };
}

/** Negative when `a` is more specific than `b`, positive when less, 0 when equally specific. */
export function compareSpecificity(a: Specificity, b: Specificity): number {
  return b.literalPrefix - a.literalPrefix || b.literals - a.literals || a.doubleStars - b.doubleStars;
}
