/**
 * BridgeEnforcer against the real kernel, in a scratch network namespace (no containers: the veth
 * lookup is handed in): batched element changes, a veth name passing from one container to another,
 * an update the kernel refuses falling back to a replace, a table of an earlier run at start-up.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import { nftBridgeFilter } from '../../src/adapters/nftables/bridge-backend.js';
import { BridgeEnforcer } from '../../src/app/bridge-enforcer.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { makeFacts } from '../helpers/facts.js';
import { netns } from '../helpers/packet-lab.js';

const policy = ((): Policy => {
  const r = parsePolicy('version: 1\n', 'policy.yaml');
  if (!r.ok) throw new Error('policy');
  return r.policy;
})();

/** Container `id` (one hex digit) with MAC 02:42:ac:11:00:0<id> on the default bridge, pid 1000 + id. */
const facts = (id: string) => {
  const f = makeFacts({
    id: id.repeat(64),
    networks: [{ name: 'bridge', networkId: 'n1', ipv4: `172.17.0.${parseInt(id, 16) + 1}`, ipv6: '', mac: `02:42:ac:11:00:0${id}` }],
  });
  return { ...f, state: { ...f.state, pid: 1000 + parseInt(id, 16) } };
};

/** The veth lookup as the kernel answers it: of `veths`, only the ports of the container with that pid. */
const lookup = (veths: ReadonlyMap<string, string>) => (pid: number) => new Map([...veths].filter(([mac]) => mac === `02:42:ac:11:00:0${(pid - 1000).toString(16)}`));
/** The decision for container `id` with the bridge ports `veths` gives it (the host facts a sync reads). */
const judged = (id: string, veths: ReadonlyMap<string, string>) => {
  const f = facts(id);
  return { facts: f, decision: evaluate(policy, f, { relabel: null, veths: lookup(veths)(f.state.pid) }) };
};

const hooks = {
  onDriftRepaired: () => {},
  onSpoofing: () => {},
  onFilterFailed: (_container: unknown, error: string) => {
    throw new Error(`bridge filter failed: ${error}`);
  },
};

function setup(t: Test, veths: Map<string, string>) {
  const ns = netns(t, 'dwbe');
  const nft = (...args: string[]) => execFileSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line).msg as string) });
  const enforcer = new BridgeEnforcer(nftBridgeFilter({ netns: ns }), log, hooks);
  const apply = (id: string) => enforcer.apply(judged(id, veths));
  const set = (name: string) => nft('list', 'set', 'bridge', 'dockwarden_bridge', name);
  return { ns, nft, enforcer, apply, set, warnings };
}

t.test('a veth name that passes to another container stays filtered with the new owner', async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0']]);
  const { enforcer, apply, set } = setup(t, veths);
  await apply('a');
  // `a` died, its veth name was freed and given to `b` before the die event was handled.
  veths.clear();
  veths.set('02:42:ac:11:00:0b', 'veth0');
  await apply('b');
  await enforcer.forget('a'.repeat(64));
  t.match(set('ports'), /"veth0"/, 'the port is still filtered');
  t.match(set('macs'), /"veth0" \. 02:42:ac:11:00:0b/, "with b's MAC");
  t.notMatch(set('macs'), /02:42:ac:11:00:0a/, "and not a's");
  t.equal(await enforcer.repairDrift(), null);
});

t.test('an update the kernel refuses (element gone) becomes a replace; concurrent changes batch', async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0b', 'veth1'], ['02:42:ac:11:00:0c', 'veth2']]);
  const { nft, enforcer, apply, set, warnings } = setup(t, veths);
  await Promise.all([apply('a'), apply('b'), apply('c')]);
  t.match(set('ports'), /"veth0", "veth1", "veth2"|"veth0".*"veth1".*"veth2"/s);
  nft('delete', 'element', 'bridge', 'dockwarden_bridge', 'macs', '{ "veth1" . 02:42:ac:11:00:0b }');
  await enforcer.forget('b'.repeat(64));
  t.same(warnings, ['bridge table update failed; replacing the whole table']);
  t.notMatch(set('ports'), /veth1/);
  t.match(set('macs'), /"veth0" \. 02:42:ac:11:00:0a/);
  t.match(set('macs'), /"veth2" \. 02:42:ac:11:00:0c/);
  t.equal(await enforcer.repairDrift(), null, 'the replace left the kernel as planned');
});

t.test("the filter's terse read of the chains and set declarations is the full read's, whatever the elements; null without the table", async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0b', 'veth1']]);
  const { ns, apply } = setup(t, veths);
  const filter = nftBridgeFilter({ netns: ns });
  t.equal(await filter.skeleton(), null, 'no table');
  await apply('a');
  const one = await filter.read();
  await apply('b');
  const two = await filter.read();
  t.ok(one !== null && two !== null && two.elements.length > one.elements.length, 'elements added');
  t.equal(await filter.skeleton(), two!.skeleton, "the full read's");
  t.equal(two!.skeleton, one!.skeleton, 'the same with fewer elements');
});

t.test('a table from an earlier run is replaced at the first check, not reported as drift', async (t) => {
  const { nft, enforcer, set } = setup(t, new Map());
  nft('add', 'table', 'bridge', 'dockwarden_bridge');
  nft('add', 'set', 'bridge', 'dockwarden_bridge', 'ports', '{ type ifname; }');
  nft('add', 'element', 'bridge', 'dockwarden_bridge', 'ports', '{ "vethstale" }');
  t.equal(await enforcer.repairDrift(), null, 'nothing applied yet in this run: unknown, not drift');
  t.notMatch(set('ports'), /vethstale/, 'the earlier run\'s port is gone');
  t.match(nft('list', 'chain', 'bridge', 'dockwarden_bridge', 'check'), /jump spoofed/, 'and our chains are in');
});

t.test("at start-up, an earlier run's ports stay filtered until every container is judged, then the table is replaced in one transaction", async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0b', 'veth1'], ['02:42:ac:11:00:0d', 'veth2']]);
  const { ns, set } = setup(t, veths);
  const earlier = new BridgeEnforcer(nftBridgeFilter({ netns: ns }), pino({ level: 'silent' }), hooks);
  const earlierVeths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0c', 'veth9']]);
  for (const id of ['a', 'c']) await earlier.apply(judged(id, earlierVeths));
  t.equal(await earlier.reconciled(), false, 'a table written as its containers were judged is not replaced again');
  t.match(set('ports'), /"veth0".*"veth9"|"veth9".*"veth0"/s, 'the earlier run filtered veth0 and veth9');
  // The daemon restarts: its enforcer finds the earlier table.
  const filter = nftBridgeFilter({ netns: ns });
  const writes: string[] = [];
  const enforcer = new BridgeEnforcer({
    ...filter,
    update: (remove, add) => (writes.push('update'), filter.update(remove, add)),
    replace: (ports, audit) => (writes.push('replace'), filter.replace(ports, audit)),
  }, pino({ level: 'silent' }), hooks);
  for (const id of ['b', 'd', 'a']) await enforcer.apply(judged(id, veths));
  t.same(writes, [], 'nothing written while the start-up reconcile runs');
  t.match(set('ports'), /veth9/, 'a new start does not drop the earlier ports');
  t.equal(await enforcer.reconciled(), true, 'the earlier table replaced: no drift check is due');
  t.same(writes, ['replace'], 'one write: the whole table');
  t.match(set('ports'), /"veth1".*"veth2"|"veth2".*"veth1"/s, 'the new starts are filtered once it is done');
  t.notMatch(set('ports'), /veth9/, 'the port of a container this run did not see is gone');
  t.match(set('ports'), /"veth0".*"veth1"|"veth1".*"veth0"/s);
  t.equal(await enforcer.repairDrift(), null, 'the kernel holds what was written');
  t.equal(await enforcer.reconciled(), false, 'once');
});

t.test("start-up: the earlier run's table is looked for once, before any container is judged; a look that failed is made again by the first write", async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0']]);
  const { ns, set } = setup(t, veths);
  /** The filter, its looks at the table counted (the look for it refused while `refused`). */
  const counted = () => {
    const filter = nftBridgeFilter({ netns: ns });
    const seen = { reads: [] as string[], refused: false };
    return {
      seen,
      filter: {
        ...filter,
        read: (background?: boolean) => (seen.reads.push('read'), filter.read(background)),
        skeleton: () => (seen.reads.push('skeleton'), filter.skeleton()),
        installed: () => {
          seen.reads.push('installed');
          return seen.refused ? Promise.reject(new Error('nft: refused (a fault made for this test)')) : filter.installed();
        },
      },
    };
  };
  const first = counted();
  first.seen.refused = true;
  const none = new BridgeEnforcer(first.filter, pino({ level: 'silent' }), hooks);
  await t.rejects(none.lookForEarlierTable(), /refused/, 'a look that fails says so');
  first.seen.refused = false;
  await none.apply(judged('a', veths));
  t.same(first.seen.reads.slice(0, 2), ['installed', 'installed'], 'the first write looked again');
  t.match(set('ports'), /veth0/, 'no earlier table: the first write put in the table');

  const second = counted();
  const restarted = new BridgeEnforcer(second.filter, pino({ level: 'silent' }), hooks);
  t.equal(await restarted.lookForEarlierTable(), true, 'the table of the run before is found');
  t.equal(await restarted.lookForEarlierTable(), true, 'asked again: the same answer');
  for (const id of ['a', 'b']) await restarted.apply(judged(id, veths));
  t.same(second.seen.reads, ['installed'], 'one look in all: the syncs waited for no nft run');
});

t.test('drift: an element added or deleted by hand and an edited rule are found against what was installed, and repaired', async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0b', 'veth1']]);
  const { nft, enforcer, apply, set } = setup(t, veths);
  await apply('a');
  await apply('b');
  await enforcer.forget('b'.repeat(64));
  t.equal(await enforcer.repairDrift(), null, 'after element updates only, the kernel holds what was installed');

  nft('add', 'element', 'bridge', 'dockwarden_bridge', 'addrs4', '{ "veth0" . 172.17.0.99 }');
  t.equal(await enforcer.repairDrift(), 'the bridge table differs from what dockwarden applied', 'an address added by hand');
  t.notMatch(set('addrs4'), /172\.17\.0\.99/, 'gone again');

  nft('delete', 'element', 'bridge', 'dockwarden_bridge', 'arps', '{ "veth0" . 02:42:ac:11:00:0a . 0.0.0.0 }');
  t.equal(await enforcer.repairDrift(), 'the bridge table differs from what dockwarden applied', 'an element deleted by hand');
  t.match(set('arps'), /"veth0" \. 02:42:ac:11:00:0a \. 0\.0\.0\.0/, 'back');
  // The repair's replace reads its chains back beside what follows it: a check waits for that read.
  t.equal(await enforcer.repairDrift(), null, 'the repaired table recorded');

  nft('flush', 'chain', 'bridge', 'dockwarden_bridge', 'check');
  t.equal(await enforcer.repairDrift(), 'the bridge table differs from what dockwarden applied', 'an emptied chain');
  t.match(nft('list', 'chain', 'bridge', 'dockwarden_bridge', 'check'), /jump spoofed/, 'the rules are back');
  t.equal(await enforcer.repairDrift(), null, 'and nothing after the repair');
});

t.test('a drift check reads the table while containers come and go: nothing held, no drift made up, a real one still found', async (t) => {
  const veths = new Map([['02:42:ac:11:00:0a', 'veth0'], ['02:42:ac:11:00:0b', 'veth1'], ['02:42:ac:11:00:0c', 'veth2']]);
  const ns = netns(t, 'dwbe');
  const real = nftBridgeFilter({ netns: ns });
  let reads = 0;
  let readHeld: Promise<void> | null = null;
  // A read of a big table takes a second; here it begins only after the changes below have gone through.
  const enforcer = new BridgeEnforcer({
    ...real,
    async read(background) {
      reads++;
      const held = readHeld;
      readHeld = null;
      if (held) await held;
      return real.read(background);
    },
  }, pino({ level: 'silent' }), hooks);
  const apply = (id: string) => enforcer.apply(judged(id, veths));
  await apply('a');
  t.equal(await enforcer.repairDrift(), null);

  let release = () => {};
  readHeld = new Promise((resolve) => (release = resolve));
  reads = 0;
  const check = enforcer.repairDrift();
  await apply('b');
  await enforcer.forget('a'.repeat(64));
  release();
  t.equal(await check, null, 'the table read after the changes differs from the snapshot only in their elements');
  t.equal(reads, 1, 'one read, outside the queue, not redone');
  t.same(enforcer.ports().map((p) => p.ifname), ['veth1']);

  readHeld = new Promise((resolve) => (release = resolve));
  const second = enforcer.repairDrift();
  await apply('c');
  execFileSync('ip', ['netns', 'exec', ns, 'nft', 'delete', 'element', 'bridge', 'dockwarden_bridge', 'arps', '{ "veth1" . 02:42:ac:11:00:0b . 0.0.0.0 }']);
  release();
  t.equal(await second, 'the bridge table differs from what dockwarden applied', 'an element of a container no event touched, deleted by hand meanwhile');
  t.equal(await enforcer.repairDrift(), null, 'repaired');
});
