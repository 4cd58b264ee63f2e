/**
 * Answers kept by a text key, at most `limit` of them (then it starts again), so that a memo fed with
 * what containers choose cannot grow with them. A key longer than `maxKeyLength` is answered each time
 * and not kept: its text alone would be what the memo holds. Pure apart from its own map; an answer
 * that throws is not kept.
 */
export function boundedMemo<T>(limit: number, maxKeyLength = Number.POSITIVE_INFINITY): (key: string, compute: () => T) => T {
  const kept = new Map<string, T>();
  return (key, compute) => {
    const known = kept.get(key);
    if (known !== undefined) return known;
    const value = compute();
    if (key.length <= maxKeyLength) {
      if (kept.size >= limit) kept.clear();
      kept.set(key, value);
    }
    return value;
  };
}
