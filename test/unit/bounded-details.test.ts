import t from 'tap';
import { boundDetails, DETAIL_BOUNDS } from '../../src/domain/alerts/bounded-details.js';
import { makeAlert } from '../../src/domain/alerts/alert.js';

const context = { host: 'h', mode: 'enforce' as const, policyHash: 'p' };

t.test('small details pass unchanged', async (t) => {
  const details = { execs: [{ id: 'a', command: ['sh', '-c', 'true'], running: false }], n: 3, ok: true, none: null };
  t.same(boundDetails(details), details);
});

t.test('a long string is cut, and the cut says how much is missing', async (t) => {
  const argv = 'A'.repeat(5_000_000);
  const { command } = boundDetails({ command: argv }) as { command: string };
  t.equal(command.length < DETAIL_BOUNDS.stringChars + 40, true);
  t.match(command, /^A{1024}…\[4998976 more characters\]$/);
});

t.test('a string is never cut between the halves of a surrogate pair', async (t) => {
  const text = 'a'.repeat(DETAIL_BOUNDS.stringChars - 1) + '😀'.repeat(10);
  const { s } = boundDetails({ s: text }) as { s: string };
  t.notMatch(s, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/, 'no lone high surrogate');
});

t.test('long arrays, many keys and deep nesting are cut and marked', async (t) => {
  const mounts = Array.from({ length: 10_000 }, (_, i) => ({ source: `/v/${i}` }));
  const labels = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, 'v']));
  let deep: unknown = 'bottom';
  for (let i = 0; i < 50; i++) deep = { deep };
  const bounded = boundDetails({ mounts, labels, deep }) as { mounts: unknown[]; labels: Record<string, unknown>; deep: unknown };
  t.equal(bounded.mounts.length, DETAIL_BOUNDS.arrayItems + 1);
  t.equal(bounded.mounts.at(-1), `[${10_000 - DETAIL_BOUNDS.arrayItems} more]`);
  t.equal(Object.keys(bounded.labels).length, DETAIL_BOUNDS.objectKeys + 1);
  t.equal(bounded.labels['[more keys]'], 500 - DETAIL_BOUNDS.objectKeys);
  t.match(JSON.stringify(bounded.deep), /\[nested too deep\]/);
});

t.test('many fields each within bounds still fit the total: tighter bounds first, then a summary', async (t) => {
  const argv = Array.from({ length: 400 }, (_, i) => `${i}`.padEnd(2_500, 'x'));
  const tighter = boundDetails({ execs: [{ command: argv }] }) as { execs: Array<{ command: string[] }> };
  t.ok(Buffer.byteLength(JSON.stringify(tighter)) <= DETAIL_BOUNDS.totalBytes);
  const command = tighter.execs[0]!.command;
  t.equal(command.at(-1), `[${400 - (command.length - 1)} more]`, 'still the first arguments, and a marker');
  t.ok(command.length - 1 >= 8, `${command.length - 1} arguments kept`);
  t.match(command[0], /^0x+…\[\d+ more characters\]$/);
  const details = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`f${i}`, Array.from({ length: 50 }, () => 'y'.repeat(1000))]));
  const bounded = boundDetails(details);
  t.equal(bounded.truncated, true, 'even 64 keys of 8 items of 64 characters do not fit: the summary');
  t.ok(Buffer.byteLength(JSON.stringify(bounded)) <= DETAIL_BOUNDS.totalBytes);
  t.ok((bounded.detailsBytes as number) > DETAIL_BOUNDS.totalBytes);
});

t.test('a label key __proto__ stays a plain key', async (t) => {
  const details = JSON.parse('{"labels":{"__proto__":{"polluted":1}}}') as Record<string, unknown>;
  const bounded = boundDetails(details) as { labels: Record<string, unknown> };
  t.same(Object.keys(bounded.labels), ['__proto__']);
  t.equal(({} as Record<string, unknown>).polluted, undefined);
});

t.test('every alert record is bounded, whoever raises it', async (t) => {
  const alert = makeAlert({ check: 'privileged-exec', severity: 'high', message: 'm', details: { argv: ['x'.repeat(17_000_000)] } }, context, new Date(), new Uint8Array(10));
  t.ok(Buffer.byteLength(JSON.stringify(alert)) < 4096);
});
