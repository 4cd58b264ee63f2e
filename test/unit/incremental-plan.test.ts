import t from 'tap';
import { IncrementalPlan, planAll, type ContainerElements, type FirewallPlan } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import type { Cidr } from '../../src/domain/policy/model.js';

const cidr = (text: string): Cidr => parseCidr(text)!;

/** A small deterministic PRNG, so a failure reproduces. */
function random(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

/** Random containers over few ports, addresses and sources, so overlaps and shared endpoints are common. */
function randomContainer(next: () => number, id: string): ContainerElements {
  const pick = <T,>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const claims = Array.from({ length: Math.floor(next() * 3) }, () => ({
    hostAddr: pick([cidr('0.0.0.0/0'), cidr('198.51.100.1'), cidr('198.51.100.2'), cidr('::/0'), cidr('2001:db8::1')]),
    proto: pick(['tcp', 'udp'] as const),
    port: pick([80, 443, 8080]),
    sources: [] as Cidr[],
  })).map((c) => ({ ...c, sources: c.hostAddr.family === 4 ? pick([[], [cidr('198.51.100.0/24')], [cidr('198.51.100.7')], [cidr('0.0.0.0/0')]]) : pick([[], [cidr('2001:db8:1::/48')]]) }));
  const endpoints = Array.from({ length: Math.floor(next() * 3) }, () => ({
    addr: pick([{ family: 4 as const, text: '10.0.0.2' }, { family: 4 as const, text: '10.0.0.3' }, { family: 6 as const, text: 'fd00::2' }]),
    proto: pick(['tcp', 'udp'] as const),
    port: pick([80, 443]),
    hostPort: pick([80, 8080]),
  }));
  return { containerId: id, claims, endpoints };
}


function keys(e: Pick<FirewallPlan, 'ports' | 'allows' | 'endpoints'>): string[] {
  return [
    ...e.ports.map((p) => `p ${p.hostAddr.text} ${p.proto} ${p.port}`),
    ...e.allows.map((a) => `a ${a.hostAddr.text} ${a.proto} ${a.port} ${a.source.text}`),
    ...e.endpoints.map((x) => `e ${x.addr.text} ${x.proto} ${x.port} ${x.hostPort}`),
  ];
}

t.test('deltas applied one by one always equal the full plan', async (t) => {
  const options = { defaultDeny: true, bridges: ['docker0'] };
  for (const seed of [1, 2, 3, 4, 5]) {
    const next = random(seed);
    const plan = new IncrementalPlan();
    const current = new Map<string, ContainerElements>();
    const kernel = new Set<string>();
    let mismatches = 0;
    for (let step = 0; step < 400; step++) {
      const id = `c${Math.floor(next() * 12)}`;
      const change = next() < 0.3 ? { containerId: id, claims: [], endpoints: [] } : randomContainer(next, id);
      current.set(id, change);
      const diff = plan.set(change);
      for (const key of keys(diff.delete)) if (!kernel.delete(key)) mismatches++;
      for (const key of keys(diff.add)) {
        if (kernel.has(key)) mismatches++;
        kernel.add(key);
      }
      const full = planAll(current.values(), options);
      if ([...kernel].sort().join('|') !== keys(full).sort().join('|')) mismatches++;
      if (JSON.stringify(plan.plan(options)) !== JSON.stringify(full)) mismatches++;
    }
    t.equal(mismatches, 0, `seed ${seed}: 400 random changes, every delta consistent`);
    t.equal(plan.size, [...current.values()].filter((c) => c.claims.length + c.endpoints.length > 0).length);
  }
});

t.test('a change touches only its own port groups', async (t) => {
  const plan = new IncrementalPlan();
  for (let i = 0; i < 1000; i++) {
    plan.set({ containerId: `c${i}`, claims: [{ hostAddr: cidr('0.0.0.0/0'), proto: 'tcp', port: 10000 + i, sources: [cidr('198.51.100.0/24')] }], endpoints: [{ addr: { family: 4, text: `10.0.${i >> 8}.${i & 255}` }, proto: 'tcp', port: 80, hostPort: 10000 + i }] });
  }
  const diff = plan.set({ containerId: 'c5', claims: [], endpoints: [] });
  t.same(keys(diff.delete).sort(), ['a 0.0.0.0/0 tcp 10005 198.51.100.0/24', 'e 10.0.0.5 tcp 80 10005', 'p 0.0.0.0/0 tcp 10005']);
  t.same(keys(diff.add), []);
});

t.test('an endpoint two containers share stays until both are gone', async (t) => {
  const plan = new IncrementalPlan();
  const endpoint = { addr: { family: 4 as const, text: '10.0.0.2' }, proto: 'tcp' as const, port: 80, hostPort: 8080 };
  t.equal(plan.set({ containerId: 'old', claims: [], endpoints: [endpoint] }).add.endpoints.length, 1);
  t.equal(plan.set({ containerId: 'new', claims: [], endpoints: [endpoint] }).add.endpoints.length, 0);
  t.equal(plan.set({ containerId: 'old', claims: [], endpoints: [] }).delete.endpoints.length, 0, 'still held by the new one');
  t.equal(plan.set({ containerId: 'new', claims: [], endpoints: [] }).delete.endpoints.length, 1);
});

t.test('claimants: the containers whose claim covers a host address, protocol and port (audit counts)', async (t) => {
  const plan = new IncrementalPlan();
  const claim = (hostAddr: string, port: number) => ({ hostAddr: cidr(hostAddr), proto: 'tcp' as const, port, sources: [] });
  plan.set({ containerId: 'wild', claims: [claim('0.0.0.0/0', 80)], endpoints: [] });
  plan.set({ containerId: 'one', claims: [claim('198.51.100.2', 81)], endpoints: [] });
  plan.set({ containerId: 'six', claims: [claim('::/0', 80)], endpoints: [] });
  const at = (text: string, port: number, proto: 'tcp' | 'udp' = 'tcp') =>
    plan.claimants({ family: text.includes(':') ? 6 : 4, text }, proto, port);
  t.same(at('198.51.100.1', 80), ['wild'], 'a wildcard binding covers every address');
  t.same(at('0.0.0.0', 80), ['wild'], 'and its own');
  t.same(at('198.51.100.2', 81), ['one']);
  t.same(at('198.51.100.1', 81), [], 'another address of a bound port is nobody\'s');
  t.same(at('198.51.100.1', 80, 'udp'), [], 'nor another protocol');
  t.same(at('2001:db8::1', 80), ['six'], 'IPv6 has its own claims');
  plan.set({ containerId: 'wild', claims: [], endpoints: [] });
  t.same(at('198.51.100.1', 80), [], 'gone with its container');
});
