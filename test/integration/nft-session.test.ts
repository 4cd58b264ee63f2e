/**
 * NftSession against the real nft and kernel, in fresh network namespaces: the reply protocol over
 * `nft -i` (applied, refused and located, in order), and what its socket owns: a `flags owner` table
 * survives another process's `nft flush ruleset`, others may not delete it, and it goes when the
 * process ends; the next write starts another process.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { NftSession } from '../../src/adapters/nftables/nft-session.js';
import { isNftError } from '../../src/adapters/nftables/nft.js';
import { netns as labNetns } from '../helpers/packet-lab.js';
import { until } from '../helpers/until.js';

const OWNED = 'table inet dws_guard { flags owner; }\ndelete table inet dws_guard\ntable inet dws_guard {\n\tflags owner;\n\tset s {\n\t\ttype inet_service\n\t}\n}\n';

function lab(t: Test): { session: NftSession; pids: number[]; ended: Array<NodeJS.Signals | null>; nft(...args: string[]): string | null } {
  const name = labNetns(t, 'dwsess');
  const pids: number[] = [];
  const ended: Array<NodeJS.Signals | null> = [];
  const session = new NftSession({ netns: name, started: (pid) => pids.push(pid), ended: (_code, signal) => ended.push(signal) });
  t.teardown(() => session.close());
  const nft = (...args: string[]): string | null => {
    try {
      return execFileSync('ip', ['netns', 'exec', name, 'nft', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return null;
    }
  };
  return { session, pids, ended, nft };
}

t.test('each script is one transaction with its own outcome, in order', async (t) => {
  const { session, nft } = lab(t);
  const holder = await session.run(OWNED);
  const results = await Promise.allSettled([
    session.run('add element inet dws_guard s { 80 }\n'),
    session.run('add element inet dws_guard s { 81 }\nadd element inet dws_guard nosuch { 82 }\n'),
    session.run('add element inet dws_guard s { 83 }\n'),
  ]);
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  const refused = (results[1] as PromiseRejectedResult).reason as unknown;
  t.ok(isNftError(refused) && refused.line === 2 && refused.inputLine === 'add element inet dws_guard nosuch { 82 }', 'the refusal is located in its script');
  t.match(nft('list', 'set', 'inet', 'dws_guard', 's'), /elements = \{ 80, 83 \}/, 'the refused script changed nothing (81 is not there)');
  t.equal(session.holder, holder, 'one process for all of them');
});

t.test('the table it owns: kept through another process\'s flush, not deletable by others, gone with the process', async (t) => {
  const { session, pids, ended, nft } = lab(t);
  const first = await session.run(OWNED);
  await session.run('add element inet dws_guard s { 80 }\n');
  t.not(nft('flush', 'ruleset'), null, 'nft flush ruleset succeeds');
  t.match(nft('list', 'set', 'inet', 'dws_guard', 's'), /elements = \{ 80 \}/, 'and leaves the owned table');
  t.equal(nft('delete', 'table', 'inet', 'dws_guard'), null, 'another process may not delete it');
  t.equal(pids.length, 1);
  process.kill(pids[0]!, 'SIGKILL'); // `ip netns exec` execs nft: the process spawned is nft's
  await until(async () => (ended.length > 0 ? true : undefined), 10_000, 'the end told');
  t.same(ended, ['SIGKILL']);
  t.equal(session.holder, null, 'no process holds anything now');
  t.equal(nft('list', 'table', 'inet', 'dws_guard'), null, 'the table went with it');
  const second = await session.run(OWNED);
  t.not(second, first, 'the next write started another process');
  t.equal(pids.length, 2);
  t.not(nft('list', 'table', 'inet', 'dws_guard'), null, 'which owns the table now');
});

t.test('every wait is bounded: a reply not in time fails the write and ends the process', async (t) => {
  const name = labNetns(t, 'dwsess');
  const session = new NftSession({ netns: name, timeoutMs: 1 });
  t.teardown(() => session.close());
  const error = await session.run(OWNED).catch((e: unknown) => e);
  t.ok(isNftError(error) && error.timedOut, 'timed out');
  t.equal(session.holder, null);
});

t.test('a process started ahead of the first write is the one that writes, and the table it owns is written as without it', async (t) => {
  const { session, pids, nft } = lab(t);
  t.equal(session.holder, null, 'nothing runs before start()');
  session.start();
  t.equal(pids.length, 1, 'start() runs nft -i now');
  const started = session.holder;
  t.not(started, null);
  session.start();
  t.equal(pids.length, 1, 'a second start() while it runs starts nothing');
  t.equal(await session.run(OWNED), started, 'the first write goes through the process started ahead');
  t.not(nft('flush', 'ruleset'), null);
  t.match(nft('list', 'table', 'inet', 'dws_guard'), /flags owner/, 'and the table it wrote is owned by it');
  session.close();
  session.start();
  t.equal(pids.length, 1, 'no start after close()');
});
