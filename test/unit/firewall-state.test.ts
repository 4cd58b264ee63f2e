import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readFirewallState, startOptions, writeFirewallState } from '../../src/app/firewall-state.js';
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
