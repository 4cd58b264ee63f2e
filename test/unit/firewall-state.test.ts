import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FirewallStateFile, readFirewallState, startOptions, writeFirewallState } from '../../src/app/firewall-state.js';
import { renderTable } from '../../src/adapters/nftables/render.js';
import { IncrementalPlan } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';

t.test('what is written is read back', async (t) => {
  const dir = t.testdir();
  const port = { hostAddr: parseCidr('0.0.0.0/0')!, proto: 'tcp' as const, port: 8080 };
  writeFirewallState(dir, { defaultDeny: true, bridges: ['docker0', 'br-0123456789ab'], routed4: ['br-0123456789ab'], routed6: [], otherBridges: [] }, [port]);
  t.same(readFirewallState(dir), { bridges: ['docker0', 'br-0123456789ab'], routed4: ['br-0123456789ab'], routed6: [], defaultDeny: true, ports: [port] });
});

t.test('names no interface can have are left out where they enter, so the baseline still renders', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'firewall.json'), JSON.stringify({
    bridges: ['docker0', 'evil" ; flush ruleset', 'x'.repeat(16), 42, ''],
    routed4: ['br-ok', 'bad name'],
    defaultDeny: true,
    ports: [['0.0.0.0/0', 'tcp', 80], ['0.0.0.0/0', 'tcp', 70000], ['nonsense', 'tcp', 81]],
  }));
  const saved = readFirewallState(dir)!;
  t.same([saved.bridges, saved.routed4, saved.ports.map((p) => p.port)], [['docker0'], ['br-ok'], [80]]);
  const baseline = new IncrementalPlan().plan(startOptions(saved, true, []));
  t.doesNotThrow(() => renderTable(baseline), 'the renderer takes every name that came through');
});

t.test('a file that is not ours is no state at all', async (t) => {
  const dir = t.testdir();
  writeFileSync(join(dir, 'firewall.json'), '{"bridges": "docker0"}');
  t.equal(readFirewallState(dir), null);
  writeFileSync(join(dir, 'firewall.json'), 'not json');
  t.equal(readFirewallState(dir), null);
});

const port = (n: number) => ({ hostAddr: parseCidr('0.0.0.0/0')!, proto: 'tcp' as const, port: n });
const OPTIONS = { defaultDeny: true, bridges: ['docker0'], routed4: [], routed6: [], otherBridges: [] };

t.test('ports published one by one are on disk at once, and the whole file is rewritten only as often as it has doubled', async (t) => {
  const dir = t.testdir();
  const file = new FirewallStateFile(dir);
  file.write(OPTIONS, []);
  const published: ReturnType<typeof port>[] = [];
  let rewrites = 0;
  for (let n = 1; n <= 5_000; n++) {
    published.push(port(n));
    file.publishing(OPTIONS, [port(n)], () => (rewrites++, published));
    if (n % 997 === 0 || n === 5_000) {
      const ports = readFirewallState(dir)!.ports.map((p) => p.port);
      t.same(new Set(ports), new Set(published.map((p) => p.port)), `after ${n} ports, every one is read back`);
    }
  }
  // A full write when the journal passes max(1,024, ports in the file): after 1,025, 2,051 and 4,103 ports.
  t.equal(rewrites, 3, 'three full writes for 5,000 events: amortized O(1) per event');
  t.equal(readFirewallState(dir)!.ports.length, 5_000, 'each port once after the last full write');
});

t.test('a port that goes away stays in the file (it can only close too much) until the next full write', async (t) => {
  const dir = t.testdir();
  const file = new FirewallStateFile(dir);
  file.write(OPTIONS, [port(80)]);
  file.publishing(OPTIONS, [port(81)], () => [port(80), port(81)]);
  file.publishing(OPTIONS, [], () => (t.fail('nothing published, nothing written'), []));
  t.same(readFirewallState(dir)!.ports.map((p) => p.port), [80, 81]);
  file.write(OPTIONS, [port(81)]);
  t.same(readFirewallState(dir)!.ports.map((p) => p.port), [81], 'the full write folds the journal in and drops 80');
});

t.test('a journal line cut short by a crash is left out; the lines before it are read', async (t) => {
  const dir = t.testdir();
  new FirewallStateFile(dir).write(OPTIONS, [port(80)]);
  writeFileSync(join(dir, 'firewall.ports.jsonl'), '["0.0.0.0/0","tcp",81]\n["::/0","udp",82]\n["0.0.0.0/0","tc');
  t.same(readFirewallState(dir)!.ports.map((p) => `${p.hostAddr.text} ${p.proto} ${p.port}`), ['0.0.0.0/0 tcp 80', '0.0.0.0/0 tcp 81', '::/0 udp 82']);
});
