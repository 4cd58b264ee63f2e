/**
 * policy-parse (issue 21): what validating a policy costs, over the fuzz suite's inputs and at the bounds.
 *
 *   - time per validation (`parsePolicy`, as `dockwarden policy validate` and every reload run it) over
 *     DW_BENCH_POLICY_CASES generated inputs (mutations of the examples, hostile YAML, generated
 *     documents in seven YAML styles; fixed seed), median and p99;
 *   - the largest accepted policy (source sets up to the key bound) and its load time;
 *   - the findings' inputs: 40,000 unknown keys, one anchored list of 10,000 bad addresses referenced
 *     98 times (22 s and 1.85 GB before), a recursive alias, nesting past the bound.
 *
 * Floor, measured in the same run on the same texts: yaml's own `parseDocument` (the syntax tree, which
 * every validation needs first). The ratio says what the checks add on top of reading the YAML.
 * No Docker, no daemon, no root needed beyond the bench lock.
 */
import fc from 'fast-check';
import { parseDocument } from 'yaml';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { YAML_LIMITS } from '../../src/domain/yaml-source.js';
import { EXAMPLES, hostile, mutationOf, policyDocument, STYLES } from '../../test/helpers/policy-fuzz.js';
import { fmtStats, main, median, ms, printJson, ratio, say, stats } from './lib.js';

const CASES = Number(process.env.DW_BENCH_POLICY_CASES ?? 3000);

function time(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Median of `runs` timings of `fn` on one text (big inputs: a few runs). */
function timeRuns(fn: () => unknown, runs: number): number {
  return median(Array.from({ length: runs }, () => time(fn)));
}

await main('policy-parse', 170, { hostTable: false, docker: false, daemon: false }, async () => {
  const texts = fc.sample(fc.oneof(mutationOf(EXAMPLES), hostile, policyDocument.chain((doc) => fc.constantFrom(...STYLES).map((style) => style(doc)))), { seed: 21, numRuns: CASES });
  for (const text of texts.slice(0, 50)) parsePolicy(text, 'p.yaml'); // warm-up
  const validation: number[] = [];
  const floor: number[] = [];
  let accepted = 0;
  for (const text of texts) {
    floor.push(time(() => parseDocument(text, { uniqueKeys: false })));
    validation.push(time(() => (accepted += parsePolicy(text, 'p.yaml').ok ? 1 : 0)));
  }
  const v = stats(validation);
  const f = stats(floor);
  say(`validation of ${texts.length} generated policies (${accepted} accepted): ${fmtStats(v)}`);
  say(`floor, yaml parseDocument on the same texts:        ${fmtStats(f)}`);

  // The largest accepted policy: source sets up to the key bound (each set one key).
  const sets = YAML_LIMITS.keys - 10;
  const largest = `version: 1\nsources:\n${Array.from({ length: sets }, (_, i) => `  s${i}: [198.51.${(i >> 8) & 255}.${i & 255}]`).join('\n')}\n`;
  const largestOk = parsePolicy(largest, 'p.yaml').ok;
  if (!largestOk) throw new Error('the largest policy was not accepted');
  const largestMs = timeRuns(() => parsePolicy(largest, 'p.yaml'), 3);
  const largestFloor = timeRuns(() => parseDocument(largest, { uniqueKeys: false }), 3);
  say(`largest accepted policy: ${sets} source sets, ${(largest.length / 1024).toFixed(0)} KiB: ${ms(largestMs)} (floor ${ms(largestFloor)}, ×${ratio(largestMs, largestFloor)})`);

  const addresses = Array.from({ length: 10_000 }, (_, i) => `bad-${i}`).join(', ');
  const findings: Record<string, string> = {
    'unknown-keys-40000': `version: 1\n${Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n')}\n`,
    'alias-amplification': `version: 1\nsources: { a: &a [${addresses}], ${Array.from({ length: 98 }, (_, i) => `s${i}: *a`).join(', ')} }\n`,
    'recursive-alias': 'version: &a {toString: 1, a: *a}\n',
    'nesting-5000': `version: 1\nsources: ${'['.repeat(5000)}\n`,
  };
  const rejected: Record<string, { ms: number; floorMs: number; errors: number }> = {};
  for (const [name, text] of Object.entries(findings)) {
    const result = parsePolicy(text, 'p.yaml');
    const entry = { ms: timeRuns(() => parsePolicy(text, 'p.yaml'), 3), floorMs: timeRuns(() => parseDocument(text, { uniqueKeys: false }), 3), errors: result.ok ? 0 : result.errors.length };
    rejected[name] = entry;
    say(`${name} (${(text.length / 1024).toFixed(0)} KiB): rejected=${!result.ok}, ${entry.errors} error lines, ${ms(entry.ms)} (floor ${ms(entry.floorMs)})`);
  }
  printJson('policy-parse', {
    cases: texts.length,
    accepted,
    validation: { p50: v.p50, p99: v.p99, max: v.max },
    floor: { p50: f.p50, p99: f.p99 },
    ratioP50: ratio(v.p50, f.p50),
    largest: { sets, kib: Math.round(largest.length / 1024), ms: Math.round(largestMs), floorMs: Math.round(largestFloor) },
    rejected,
  });
});
