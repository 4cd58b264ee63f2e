/**
 * The nf_tables notification parser (native/nft_events.c) on real notifications: captured from the
 * kernel in a network namespace of their own (test/helpers/nft-capture.mjs, nothing of the host's
 * ruleset touched), then parsed whole, cut at every length, with corrupted lengths, and mutated at
 * random. And which of them call for a check of one of our tables (src/app/table-watch.ts).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { parseNotifications, type TableEvent } from '../../src/adapters/nftables/table-events.js';
import { calledFor, deleted } from '../../src/app/table-watch.js';

const CAPTURE = resolve(import.meta.dirname, '../helpers/nft-capture.mjs');

const STEPS = {
  create: 'table inet dw_a {\n set s { type ipv4_addr; }\n chain c { type filter hook input priority 0; ip saddr @s accept; }\n}\nadd element inet dw_a s { 198.51.100.7 }',
  deleteElement: 'delete element inet dw_a s { 198.51.100.7 }',
  flushChain: 'flush chain inet dw_a c',
  bridge: 'table bridge dw_b {\n chain p { type filter hook prerouting priority -200; }\n}',
  flushRuleset: 'flush ruleset',
} as const;
type Step = keyof typeof STEPS;

const names = Object.keys(STEPS) as Step[];
const raw = JSON.parse(execFileSync('unshare', ['--net', process.execPath, CAPTURE], { input: JSON.stringify(names.map((n) => STEPS[n])), encoding: 'utf8' })) as string[][];
const captured = Object.fromEntries(names.map((n, i) => [n, raw[i]!.map((hex) => Buffer.from(hex, 'hex'))])) as Record<Step, Buffer[]>;
const all = Object.values(captured).flat();

const changes = (step: Step): string[] =>
  captured[step].flatMap(parseNotifications).map((e) => (e.kind === 'change' ? `${e.family} ${e.table} ${e.message}` : `unknown ${e.reason}`));

t.test('real notifications parse to what was done', async (t) => {
  t.same(new Set(changes('create')), new Set(['inet dw_a newtable', 'inet dw_a newset', 'inet dw_a newchain', 'inet dw_a newrule', 'inet dw_a newsetelem']));
  t.same(changes('deleteElement'), ['inet dw_a delsetelem']);
  t.same(changes('flushChain'), ['inet dw_a delrule']);
  t.same(new Set(changes('bridge')), new Set(['bridge dw_b newtable', 'bridge dw_b newchain']));
  const flushed = new Set(changes('flushRuleset'));
  // (chain c is already empty: no rule left to delete)
  for (const expected of ['inet dw_a deltable', 'inet dw_a delchain', 'inet dw_a delset', 'bridge dw_b deltable', 'bridge dw_b delchain']) t.ok(flushed.has(expected), expected);
  t.notOk([...flushed].some((e) => e.startsWith('unknown')), 'nothing refused');
  t.ok(all.some((d) => parseNotifications(d).length === 0), 'the generation message (NEWGEN, no table) is no event');
});

/** Where each message of a datagram ends (its nlmsg_len, read the way the kernel wrote it). */
function messageEnds(datagram: Buffer): number[] {
  const ends: number[] = [];
  for (let at = 0; at < datagram.length; at += (datagram.readUInt32LE(at) + 3) & ~3) ends.push(at + datagram.readUInt32LE(at));
  return ends;
}

t.test('a datagram cut at any length yields only what its whole messages say, and says it was cut', async (t) => {
  const wrong: string[] = [];
  let cuts = 0;
  for (const [n, datagram] of all.entries()) {
    const whole = JSON.stringify(parseNotifications(datagram));
    const ends = messageEnds(datagram);
    for (let length = 0; length < datagram.length; length++, cuts++) {
      const events = parseNotifications(datagram.subarray(0, length));
      const refused = events.at(-1)?.kind === 'unknown';
      const changed = refused ? events.slice(0, -1) : events;
      if (!whole.startsWith(JSON.stringify(changed).slice(0, -1))) wrong.push(`datagram ${n} cut at ${length}: not a prefix of the whole`);
      // Cut inside a message: refused. At a message's end (or nothing at all): the messages before it.
      if (length > 0 && !ends.includes(length) && !refused) wrong.push(`datagram ${n} cut at ${length}: inside a message, not refused`);
      if ((length === 0 || ends.includes(length)) && refused) wrong.push(`datagram ${n} cut at ${length}: at a message's end, refused`);
    }
  }
  t.same(wrong, [], `${cuts} cuts of ${all.length} datagrams`);
  t.ok(cuts > 1000);
});

t.test('corrupted lengths are refused, never read past', async (t) => {
  const message = captured.create.find((d) => parseNotifications(d).length > 1)!;
  const corrupt = (edit: (b: Buffer) => void): TableEvent[] => {
    const copy = Buffer.from(message);
    edit(copy);
    return parseNotifications(copy);
  };
  const refused = (events: TableEvent[]): boolean => events.at(-1)?.kind === 'unknown';
  t.ok(refused(corrupt((b) => b.writeUInt32LE(0xffffffff, 0))), 'nlmsg_len past the datagram');
  t.ok(refused(corrupt((b) => b.writeUInt32LE(8, 0))), 'nlmsg_len below a header');
  t.ok(refused(corrupt((b) => b.writeUInt32LE(20, 0))), 'a message with no room for its table');
  // The first attribute after the header (16) and nfgenmsg (4) is the table name (type 1).
  t.equal(message.readUInt16LE(22), 1, 'the first attribute is the table name');
  t.ok(refused(corrupt((b) => b.writeUInt16LE(0xfff0, 20))), 'nla_len past the message');
  t.ok(refused(corrupt((b) => b.writeUInt16LE(2, 20))), 'nla_len below an attribute header');
  t.ok(refused(corrupt((b) => b.fill('x', 24, b.readUInt16LE(20) + 20))), 'a table name without its NUL');
  t.ok(refused(corrupt((b) => b.writeUInt8(0, 24))), 'an empty table name');
  t.throws(() => parseNotifications(Buffer.alloc(65537)), 'a buffer larger than any datagram is refused');
});

t.test('random mutations of real datagrams: events are well-formed or refused, never a crash', async () => {
  fc.assert(
    fc.property(fc.constantFrom(...all), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), (datagram, edits) => {
      const copy = Buffer.from(datagram);
      for (const [at, byte] of edits) copy[at % copy.length] = byte;
      for (const e of parseNotifications(copy)) {
        if (e.kind === 'unknown') continue;
        if (e.table.length === 0 || e.table.length > 255 || e.table.includes('\0')) return false;
      }
      return true;
    }),
    { numRuns: 5000 },
  );
});

/** The kinds of notification, of those a step made, that call for a check of `table`. */
const messagesCalling = (step: Step, table: string, shared: boolean): string[] =>
  [...new Set(captured[step].flatMap(parseNotifications).filter((e) => calledFor(e, table, shared)).map((e) => (e.kind === 'change' ? e.message : e.reason)))].sort();

t.test('a check is called for by changes to our table, not by set elements, and by anything lost', async (t) => {
  const ours = 'inet dw_a';
  const called = (step: Step) => messagesCalling(step, ours, false);
  t.same(called('create'), ['newchain', 'newrule', 'newset', 'newtable'], 'not for the element added');
  t.same(called('deleteElement'), [], 'an element deleted: left to the periodic check');
  t.same(called('flushChain'), ['delrule']);
  t.same(called('bridge'), [], 'another table');
  t.same(called('flushRuleset'), ['delchain', 'delset', 'deltable']);
  t.ok(calledFor({ kind: 'unknown', reason: 'overrun' }, ours), 'notifications lost: check');
  t.notOk(calledFor({ kind: 'change', family: 'ip', table: 'dw_a', message: 'deltable' }, ours), 'same name, other family');
});

t.test('in a table others write to (iptables-nft\'s filter), only a table or chain deleted calls for a check', async (t) => {
  const shared = 'inet dw_a';
  const called = (step: Step) => messagesCalling(step, shared, true);
  t.same(called('create'), [], 'rules and chains added: Docker does that at every start');
  t.same(called('flushChain'), [], 'rules deleted: Docker does that at every stop');
  t.same(called('flushRuleset'), ['delchain', 'deltable']);
  t.ok(calledFor({ kind: 'unknown', reason: 'overrun' }, shared, true), 'notifications lost: check');
});

t.test('a flush ruleset deletes our table itself (repaired without a read beside first); a flushed chain does not', async (t) => {
  const ours = 'inet dw_a';
  t.ok(captured.flushRuleset.flatMap(parseNotifications).some((e) => deleted(e, ours)));
  t.notOk(captured.flushChain.flatMap(parseNotifications).some((e) => deleted(e, ours)));
  t.notOk(deleted({ kind: 'unknown', reason: 'overrun' }, ours), 'notifications lost: checked, not assumed deleted');
});
