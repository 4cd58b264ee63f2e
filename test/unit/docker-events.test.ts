import t from 'tap';
import { eventLineSplitter, MAX_LINE_BYTES, parseEvent, type DockerEvent } from '../../src/adapters/docker/events.js';

const startEvent = {
  status: 'start',
  id: 'abc123',
  from: 'dw-test/busybox:1',
  Type: 'container',
  Action: 'start',
  Actor: { ID: 'abc123', Attributes: { image: 'dw-test/busybox:1', name: 'web', 'com.example.x': 'ä' } },
  scope: 'local',
  time: 1700000000,
  timeNano: 1700000000123456800,
};

t.test('parses a dockerd event', async (t) => {
  const event = parseEvent(JSON.stringify(startEvent))!;
  t.equal(event.type, 'container');
  t.equal(event.action, 'start');
  t.equal(event.id, 'abc123');
  t.equal(event.attributes.name, 'web');
  t.equal(event.timeNano, 1700000000123456768n); // as close as a JSON number gets
});

t.test('exec actions lose the command dockerd appends', async (t) => {
  const event = parseEvent(JSON.stringify({ ...startEvent, Action: 'exec_start: sh -c id', Actor: { ID: 'c1', Attributes: { execID: 'e1' } } }))!;
  t.equal(event.action, 'exec_start');
  t.equal(event.attributes.execID, 'e1');
});

t.test('falls back to whole seconds without timeNano; non-string attributes are dropped', async (t) => {
  const event = parseEvent(JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'x', Attributes: { n: 1, s: 'ok' } }, time: 5 }))!;
  t.equal(event.timeNano, 5_000_000_000n);
  t.same(event.attributes, { s: 'ok' });
});

t.test('rejects what is not an event', async (t) => {
  for (const line of ['not json', 'null', '42', '{}', '{"Type":"container","Action":"start"}', '{"Type":1,"Action":"x","Actor":{"ID":"a"}}']) {
    t.equal(parseEvent(line), null, line);
  }
});

t.test('splits a stream whose chunks cut events and UTF-8 sequences anywhere', async (t) => {
  const lines = [startEvent, { ...startEvent, Action: 'die' }, { ...startEvent, Action: 'destroy' }].map((e) => JSON.stringify(e)).join('\n') + '\n';
  const bytes = Buffer.from(lines);
  for (const size of [1, 2, 3, 7, 64, bytes.length]) {
    const seen: DockerEvent[] = [];
    const bad: string[] = [];
    const feed = eventLineSplitter((e) => seen.push(e), (r) => bad.push(r));
    for (let i = 0; i < bytes.length; i += size) feed(bytes.subarray(i, i + size));
    t.same(seen.map((e) => e.action), ['start', 'die', 'destroy'], `chunk size ${size}`);
    t.equal(seen[0]!.attributes['com.example.x'], 'ä', `chunk size ${size}`);
    t.same(bad, []);
  }
});

t.test('a garbage line is reported and the stream goes on', async (t) => {
  const seen: string[] = [];
  const bad: string[] = [];
  const feed = eventLineSplitter((e) => seen.push(e.action), (r) => bad.push(r));
  feed(Buffer.from(`garbage\n\n${JSON.stringify(startEvent)}\n`));
  t.same(seen, ['start']);
  t.same(bad, ['unparseable event line skipped']);
});

/** Feeds `bytes` in chunks of `size`. */
function feedInChunks(feed: (chunk: Buffer) => void, bytes: Buffer, size: number): void {
  for (let i = 0; i < bytes.length; i += size) feed(bytes.subarray(i, i + size));
}

t.test('a 20 MiB line fed in 64 KiB chunks is skipped, reported once, and the next event is read', async (t) => {
  const seen: string[] = [];
  const bad: string[] = [];
  const feed = eventLineSplitter((e) => seen.push(e.action), (r) => bad.push(r));
  const huge = JSON.stringify({ ...startEvent, Actor: { ID: 'big', Attributes: { filler: 'x'.repeat(20 * 1024 * 1024) } } });
  feedInChunks(feed, Buffer.from(`${huge}\n${JSON.stringify({ ...startEvent, Action: 'die' })}\n`), 64 * 1024);
  t.same(bad, [`event line over ${MAX_LINE_BYTES} bytes skipped`], 'one report for the whole line, not one for its tail too');
  t.same(seen, ['die']);
});

t.test('a line just under the limit, in 64 KiB chunks, is read whole', async (t) => {
  const seen: DockerEvent[] = [];
  const feed = eventLineSplitter((e) => seen.push(e), () => t.fail('no bad line'));
  const filler = 'é'.repeat(7 * 1024 * 1024); // 14 MiB of two-byte sequences, cut anywhere by the chunks
  feedInChunks(feed, Buffer.from(`${JSON.stringify({ ...startEvent, Actor: { ID: 'big', Attributes: { filler } } })}\n`), 64 * 1024 + 1);
  t.equal(seen.length, 1);
  t.equal(seen[0]!.attributes.filler, filler);
});

t.test('splitting is linear: each byte of a 15 MiB line is scanned once, however many chunks carry it', async (t) => {
  // Counts the bytes the splitter searches for newlines. Re-scanning the unfinished line at every
  // chunk (what `(partial + chunk).split('\n')` did) would count ~240 × 7.5 MiB here, not 15 MiB.
  const line = Buffer.from(`${JSON.stringify({ ...startEvent, Actor: { ID: 'big', Attributes: { filler: 'x'.repeat(15 * 1024 * 1024) } } })}\n`);
  const original = Buffer.prototype.indexOf;
  let scanned = 0;
  Buffer.prototype.indexOf = function (this: Buffer, value: string | number | Uint8Array, byteOffset?: number | BufferEncoding, encoding?: BufferEncoding) {
    const at = original.call(this, value, byteOffset as number, encoding);
    scanned += (at === -1 ? this.length : at + 1) - (typeof byteOffset === 'number' ? byteOffset : 0);
    return at;
  } as typeof Buffer.prototype.indexOf;
  const seen: string[] = [];
  try {
    const feed = eventLineSplitter((e) => seen.push(e.id), () => t.fail('no bad line'));
    feedInChunks(feed, line, 64 * 1024);
  } finally {
    Buffer.prototype.indexOf = original;
  }
  t.same(seen, ['big']);
  t.equal(scanned, line.length, 'every byte once');
});
