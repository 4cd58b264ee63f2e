import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { ConfigInvalid, loadConfig } from '../../src/app/config.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import { CONFIG_EXAMPLE, configDocument, EXAMPLES, hostile, mutationOf, outcome, outsideTheFile, policyDocument, STYLES } from '../helpers/policy-fuzz.js';

/**
 * Issue 21's fuzz suite. Brief in CI (fixed seed, DW_FUZZ_RUNS cases per property); longer on demand:
 *   DW_FUZZ_RUNS=20000 DW_FUZZ_SEED=$RANDOM scripts/test.sh test/unit/policy-fuzz.test.ts
 * Figures (time per validation, largest accepted policy) come from scripts/bench/policy-parse.ts.
 */
const RUNS = Number(process.env.DW_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.DW_FUZZ_SEED ?? 21);
/** Bounds no input may pass: these catch a hang or a blow-up, they measure nothing. */
const TIME_BOUND_MS = 10_000;
const HEAP_BOUND_BYTES = 512 * 1024 * 1024;

const prototypes = [Object.prototype, Array.prototype, Function.prototype];
const snapshot = () => prototypes.map((p) => Object.getOwnPropertyNames(p).sort().join(','));
const before = snapshot();

/** Every input: no throw (the CLI's exit 0 or 1, never 2), time and heap within bounds, errors inside the file, no prototype touched. */
function checkPolicy(text: string): void {
  const heap = process.memoryUsage().heapUsed;
  const started = performance.now();
  const result = parsePolicy(text, 'p.yaml');
  const ms = performance.now() - started;
  if (ms > TIME_BOUND_MS) throw new Error(`took ${Math.round(ms)} ms`);
  if (process.memoryUsage().heapUsed - heap > HEAP_BOUND_BYTES) throw new Error('heap grew past its bound');
  if (!result.ok) {
    const outside = outsideTheFile(text, result.errors);
    if (outside.length > 0) throw new Error(`errors located outside the file: ${outside.join(', ')}`);
    if (result.errors.length > 101) throw new Error(`${result.errors.length} errors reported`);
  }
  if (snapshot().join('|') !== before.join('|') || ({} as Record<string, unknown>).polluted !== undefined) throw new Error('a prototype changed');
}

const options = { seed: SEED, numRuns: RUNS, endOnFailure: true } as const;

t.test('policies: mutations of the examples', async (t) => {
  fc.assert(fc.property(mutationOf(EXAMPLES), checkPolicy), options);
  t.pass(`${RUNS} cases, seed ${SEED}`);
});

t.test('policies: hostile YAML, alone and inside an example', async (t) => {
  fc.assert(fc.property(fc.tuple(hostile, fc.constantFrom(...EXAMPLES), fc.boolean()), ([h, example, alone]) => checkPolicy(alone ? h : `${example}\n${h}`)), options);
  t.pass();
});

t.test('policies: generated documents give one result however they are written', async (t) => {
  fc.assert(
    fc.property(policyDocument, (doc) => {
      const texts = STYLES.map((style) => style(doc));
      for (const text of texts) checkPolicy(text);
      const [first, ...rest] = texts.map(outcome);
      for (const [i, other] of rest.entries()) {
        if (JSON.stringify(other) !== JSON.stringify(first)) throw new Error(`style ${i + 1} differs:\n${JSON.stringify(first)}\n${JSON.stringify(other)}`);
      }
    }),
    options,
  );
  t.pass();
});

t.test('configs: mutations, hostile YAML and generated documents: a located ConfigInvalid or a config, nothing else', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'dw-fuzz-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'config.yaml');
  const checkConfig = (text: string): void => {
    writeFileSync(file, text);
    const started = performance.now();
    try {
      loadConfig(file, {});
    } catch (error) {
      if (!(error instanceof ConfigInvalid)) throw error;
      const outside = outsideTheFile(text, error.errors.filter((e) => !(e.line === 0 && /not valid UTF-8|bytes; at most/.test(e.message))));
      if (outside.length > 0) throw new Error(`errors located outside the file: ${outside.join(', ')}\n${error.message}`);
      if (/Cannot read|undefined|is not a function|prototype/.test(error.message.replace(/__proto__|"prototype"/g, ''))) throw new Error(`an internal message: ${error.message}`);
    }
    if (performance.now() - started > TIME_BOUND_MS) throw new Error('took too long');
    if (snapshot().join('|') !== before.join('|')) throw new Error('a prototype changed');
  };
  fc.assert(fc.property(fc.oneof(mutationOf([CONFIG_EXAMPLE]), hostile, configDocument.map((d) => STYLES[0]!(d))), checkConfig), options);
  t.pass();
});
