import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import t from 'tap';
import { batchedDestination, createLogger } from '../../src/app/logger.js';

/** A stdout stand-in that keeps each write as it came. */
function recorder() {
  const writes: string[] = [];
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => (writes.push(chunk.toString()), done()) });
  return { out, writes };
}
const nextCheckPhase = (): Promise<void> => new Promise((r) => setImmediate(r));

t.test('lines logged in one turn of the event loop go out in one write, in order, by the next turn', async (t) => {
  const { out, writes } = recorder();
  const log = createLogger('info', batchedDestination(out));
  for (let i = 0; i < 3; i++) log.info({ n: i }, 'container judged');
  t.strictSame(writes, [], 'held while the turn goes on');
  await nextCheckPhase();
  t.equal(writes.length, 1, 'one write for the three lines');
  t.strictSame(writes[0]!.trimEnd().split('\n').map((l) => (JSON.parse(l) as { n: number }).n), [0, 1, 2]);
  log.info({ n: 3 }, 'later');
  await nextCheckPhase();
  t.equal(writes.length, 2, 'a line of a later turn goes out at its own turn');
});

t.test("the logger's flush writes what is held at once", async (t) => {
  const { out, writes } = recorder();
  const log = createLogger('info', batchedDestination(out));
  log.info('stopped');
  let flushed = false;
  log.flush(() => (flushed = true));
  t.equal(writes.length, 1);
  t.ok(flushed, 'and says so');
});

t.test('lines held when the process exits are written, whatever ends it', async (t) => {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const run = (end: string) => {
    const script = `
      import { batchedDestination, createLogger } from ${JSON.stringify(resolve(import.meta.dirname, '../../src/app/logger.ts'))};
      const log = createLogger('info', batchedDestination(process.stdout));
      log.info('first'); log.fatal('last');
      ${end}
    `;
    try {
      return execFileSync(process.execPath, [...loader, '--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch (error) {
      return (error as { stdout: string }).stdout;
    }
  };
  for (const end of ['process.exit(3);', "throw new Error('crash');", '']) {
    t.strictSame(run(end).trimEnd().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg), ['first', 'last'], end || 'a normal end');
  }
});
