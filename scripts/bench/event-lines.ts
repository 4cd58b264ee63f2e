/**
 * Bench: splitting the Docker event stream into lines when one event is huge (dockerd copies a
 * container's labels into every event it sends about it, so a container chooses how long its event
 * lines are). One 15 MiB event line, fed in 64 KiB chunks as the socket delivers it, through
 * `eventLineSplitter`; the floor, measured in the same run, is the least any splitter must do with
 * those chunks: join them once and parse the line once.
 *
 * Pure CPU: no Docker, no daemon, no firewall.
 */
import { eventLineSplitter } from '../../src/adapters/docker/events.js';
import { fmtStats, main, now, printJson, ratio, say, stats } from './lib.js';

const LINE_MIB = 15;
const CHUNK = 64 * 1024;
const ROUNDS = 15;

await main('event-lines', 170, { hostTable: false, docker: false, daemon: false }, async () => {
  const event = { Type: 'container', Action: 'start', Actor: { ID: 'c'.repeat(64), Attributes: { filler: 'x'.repeat(LINE_MIB * 1024 * 1024) } }, time: 1, timeNano: 1 };
  const bytes = Buffer.from(`${JSON.stringify(event)}\n`);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) chunks.push(Buffer.from(bytes.subarray(i, i + CHUNK)));
  say(`one ${(bytes.length / 2 ** 20).toFixed(1)} MiB event line in ${chunks.length} chunks of ${CHUNK / 1024} KiB, ${ROUNDS} rounds each`);

  const splitter: number[] = [];
  const floor: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate, so a slow phase of the machine does not land on one side only.
    let seen = 0;
    const feed = eventLineSplitter(
      () => seen++,
      (reason) => {
        throw new Error(`the splitter rejected the line: ${reason}`);
      },
    );
    let t0 = now();
    for (const chunk of chunks) feed(chunk);
    splitter.push(now() - t0);
    if (seen !== 1) throw new Error(`expected one event, saw ${seen}`);

    t0 = now();
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { Actor: { ID: string } };
    floor.push(now() - t0);
    if (parsed.Actor.ID.length !== 64) throw new Error('floor parsed the wrong thing');
  }
  const s = stats(splitter);
  const f = stats(floor);
  say(`splitter  ${fmtStats(s)}`);
  say(`floor     ${fmtStats(f)}   (join the chunks once, parse once)`);
  say(`ratio p50 ${ratio(s.p50, f.p50)}  (target ≤ 1.5: linear, a constant factor over the floor)`);
  printJson('event-lines', { lineMiB: LINE_MIB, chunkKiB: CHUNK / 1024, rounds: ROUNDS, splitterMs: s, floorMs: f, ratioP50: ratio(s.p50, f.p50), met: ratio(s.p50, f.p50) <= 1.5 });
});
