/**
 * NftBatch against the real kernel, in fresh network namespaces: updates of two tables asked for in
 * the same turn are one nft run (one transaction); a joint run that fails is redone script by script,
 * each caller getting its own outcome. The runner is the real runNft, wrapped only to count its runs.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { NftBatch } from '../../src/adapters/nftables/nft-batch.js';
import { isNftError, runNft, type NftOptions } from '../../src/adapters/nftables/nft.js';
import { netns as labNetns } from '../helpers/packet-lab.js';

const TABLES = 'table inet dwb_ports { set s { type inet_service; }; }\ntable bridge dwb_bridge { set s { type ifname; }; }\n';

/** A namespace with the two tables, and a batch whose runs are counted. */
async function lab(t: Test): Promise<{ batch: NftBatch; runs: string[]; elements(): string }> {
  const name = labNetns(t, 'dwbatch');
  await runNft(TABLES, { netns: name });
  const runs: string[] = [];
  const counted = (script: string, options: NftOptions): Promise<void> => (runs.push(script), runNft(script, options));
  const elements = (): string => execFileSync('ip', ['netns', 'exec', name, 'nft', 'list', 'ruleset'], { encoding: 'utf8' });
  return { batch: new NftBatch({ netns: name }, counted), runs, elements };
}

t.test('updates of both tables asked for in one turn: one nft run, both applied', async (t) => {
  const { batch, runs, elements } = await lab(t);
  await Promise.all([
    batch.apply('add element inet dwb_ports s { 80 }\n'),
    batch.apply('add element bridge dwb_bridge s { "veth1" }\n'),
  ]);
  t.equal(runs.length, 1, 'one run');
  t.match(elements(), /elements = \{ 80 \}/);
  t.match(elements(), /elements = \{ "veth1" \}/);
});

t.test('updates asked for in different turns run apart', async (t) => {
  const { batch, runs } = await lab(t);
  await batch.apply('add element inet dwb_ports s { 80 }\n');
  await batch.apply('add element inet dwb_ports s { 81 }\n');
  t.equal(runs.length, 2);
});

t.test('a refused script fails alone, with its own line; the other is applied; nothing half-applied', async (t) => {
  const { batch, runs, elements } = await lab(t);
  const [bad, good] = await Promise.allSettled([
    // Its add would succeed, its delete cannot (no such element): the whole script is refused.
    batch.apply('add element inet dwb_ports s { 81 }\ndelete element inet dwb_ports s { 9999 }\n'),
    batch.apply('add element bridge dwb_bridge s { "veth2" }\n'),
  ]);
  t.equal(good.status, 'fulfilled', 'the good script is applied');
  t.equal(bad.status, 'rejected', 'the bad one fails');
  const error = bad.status === 'rejected' ? bad.reason : null;
  t.ok(isNftError(error), 'with an NftError');
  t.equal(isNftError(error) ? error.line : null, 2, 'pointing at its own second line');
  t.equal(runs.length, 3, 'the joint run, then each script alone');
  t.match(elements(), /"veth2"/);
  t.notMatch(elements(), /\b81\b/, 'nothing of the refused script stays');
});
