import type { Glob } from './policy/model.js';

type Token = { readonly kind: 'char'; readonly char: string } | { readonly kind: 'one' } | { readonly kind: 'star'; readonly crossesSlash: boolean };

/**
 * Compiles a policy glob: `*` = any characters but `/`, `**` = any characters, `?` = one character but
 * `/`, everything else literal; anchored, case-sensitive, one character = one code point.
 *
 * Matching simulates the pattern as an automaton instead of compiling a RegExp: the values matched
 * (container names, label values) are chosen by whoever creates containers, and a backtracking regex
 * for `*a*a*a*…` takes polynomial time on them. This takes O(pattern × value), always.
 */
export function compileGlob(pattern: string): Glob {
  if (pattern === '') throw new RangeError('a glob pattern must not be empty');
  const tokens = tokenize(pattern);
  return { pattern, test: (value) => matches(tokens, value) };
}

function tokenize(pattern: string): Token[] {
  const tokens: Token[] = [];
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i]!;
    if (char === '?') tokens.push({ kind: 'one' });
    else if (char !== '*') tokens.push({ kind: 'char', char });
    else {
      let last = i;
      while (chars[last + 1] === '*') last++;
      tokens.push({ kind: 'star', crossesSlash: last > i });
      i = last;
    }
  }
  return tokens;
}

function matches(tokens: readonly Token[], value: string): boolean {
  // active[i]: some prefix of `value` read so far brings the pattern to token i (tokens.length = done).
  const start = new Uint8Array(tokens.length + 1);
  start[0] = 1;
  let active = skipStars(tokens, start);
  for (const char of value) {
    const next = new Uint8Array(tokens.length + 1);
    tokens.forEach((token, i) => {
      if (!active[i]) return;
      if (token.kind === 'star') {
        if (token.crossesSlash || char !== '/') next[i] = 1;
      } else if (token.kind === 'one' ? char !== '/' : token.char === char) next[i + 1] = 1;
    });
    if (!next.includes(1)) return false;
    active = skipStars(tokens, next);
  }
  return active[tokens.length] === 1;
}

/** A star may also match nothing: from a star, the token after it is reachable too (chains of stars included). */
function skipStars(tokens: readonly Token[], active: Uint8Array): Uint8Array {
  tokens.forEach((token, i) => {
    if (active[i] && token.kind === 'star') active[i + 1] = 1;
  });
  return active;
}
