/** Keys looked at between two turns given to other work. */
const KEYS_PER_TURN = 2_000;

/**
 * Whether `found` (a table as read from the kernel) and `expected` (what was applied when the read
 * began) hold the same keys apart from those in `changing`: keys that transactions may have added or
 * deleted while the kernel was read, so either way is right for them. `changing` may grow while this
 * runs (it is read again at the end), and `pause` is awaited every KEYS_PER_TURN keys, so that a
 * comparison of 10,000 containers' elements lets events run between its turns.
 *
 * Exact for every other key: each key found and not changing must be expected (a key joins `changing`
 * before the transaction that changes it runs, so one found after that transaction was already in it),
 * and both sides must hold as many distinct keys apart from the changing ones; so they hold the same.
 */
export async function sameKeysApart(
  found: Iterable<string>, expected: Iterable<string>, changing: ReadonlySet<string>, pause: () => Promise<void>,
): Promise<boolean> {
  let looked = 0;
  const expectedKeys = new Set<string>();
  for (const key of expected) {
    expectedKeys.add(key);
    if (++looked % KEYS_PER_TURN === 0) await pause();
  }
  const foundKeys = new Set<string>();
  for (const key of found) {
    if (!expectedKeys.has(key) && !changing.has(key)) return false;
    foundKeys.add(key);
    if (++looked % KEYS_PER_TURN === 0) await pause();
  }
  // A key looked at before it joined `changing` was expected; it is now left out on both sides.
  let foundApart = foundKeys.size;
  let expectedApart = expectedKeys.size;
  for (const key of changing) {
    if (foundKeys.has(key)) foundApart--;
    if (expectedKeys.has(key)) expectedApart--;
  }
  return foundApart === expectedApart;
}
