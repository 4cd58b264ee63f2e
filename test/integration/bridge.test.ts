/**
 * Bridge isolation against real containers on the test dockerd: an attacker container (default
 * capabilities, so NET_RAW) ARP-spoofs (IPv6: neighbour-advertises) a victim's address, forges its
 * source MAC and its source IP.
 * With no table, and with the policy off or the network excepted, the attacks land (so the test can
 * fail); with the BridgeEnforcer applied (real nft, real veth lookup), the host's and the neighbour's
 * ARP tables stay right, forged packets never arrive, honest traffic flows, drops are counted and
 * reported once per window, and drift is repaired.
 */
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { connectEngine } from '../../src/adapters/docker/engine.js';
import { bridgeVeths } from '../../src/adapters/netns/bridge-veths.js';
import { nftBridgeFilter } from '../../src/adapters/nftables/bridge-backend.js';
import { BridgeEnforcer } from '../../src/app/bridge-enforcer.js';
import type { AlertContainer } from '../../src/domain/alerts/alert.js';
import { evaluate } from '../../src/domain/evaluate.js';
import { parsePolicy } from '../../src/domain/policy/load.js';
import type { Policy } from '../../src/domain/policy/model.js';
import { bridgeOf, interfaceMac, listen, neighbour, peer, spoof, type Peer } from '../helpers/bridge-lab.js';
import { docker, DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';

const SUITE = 'dw-test.suite=bridge';
const USER_NET = 'dw-bridge-test';
const V6_NET = 'dw-bridge-v6';
/** Documentation prefix (RFC 3849), on no route of this machine. */
const V6_SUBNET = '2001:db8:b1d6::/64';
const HOST_PORT = 18301;
const PEER_PORT = 18302;
const REPORT_WINDOW_MS = 60_000;

const engine = connectEngine({ socketPath: DOCKER_SOCKET, timeoutMs: 10_000 });
const nft = (...args: string[]) => execFileSync('nft', args, { encoding: 'utf8' });
const removeTable = () => execFileSync('nft', ['-f', '-'], { input: 'table bridge dockwarden_bridge {}\ndelete table bridge dockwarden_bridge\n' });

function policy(text: string): Policy {
  const result = parsePolicy(text, 'policy.yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.policy;
}

interface Lab {
  readonly network: string;
  readonly bridge: { readonly dev: string; readonly gateway: string; readonly mac: string };
  readonly attacker: Peer;
  readonly victim: Peer;
  readonly neighbour: Peer;
}

async function lab(t: Test, network: string): Promise<Lab> {
  t.teardown(() => removeTestContainers(SUITE));
  const start = () => runContainer({ labels: { 'dw-test.suite': 'bridge' }, hostConfig: { NetworkMode: network } });
  const [attacker, victim, neighbour] = await Promise.all([start(), start(), start()]);
  const bridge = await bridgeOf(network);
  // The kernel keeps an ARP entry updated less than `locktime` (1 s) ago against a reply with another
  // MAC: the attack, sent right after the warm-up, would land or not by the run's speed. Off for the lab.
  const locktime = `/proc/sys/net/ipv4/neigh/${bridge.dev}/locktime`;
  const before = readFileSync(locktime, 'utf8');
  writeFileSync(locktime, '0');
  t.teardown(() => writeFileSync(locktime, before));
  const neighbourPeer = await peer(neighbour!, network);
  execFileSync('nsenter', [`--net=/proc/${neighbourPeer.pid}/ns/net`, 'sysctl', '-qw', 'net.ipv4.neigh.eth0.locktime=0']);
  return {
    network,
    bridge: { ...bridge, mac: interfaceMac(bridge.dev) },
    attacker: await peer(attacker!, network),
    victim: await peer(victim!, network),
    neighbour: neighbourPeer,
  };
}

interface Outcome {
  /** The MAC the host and the neighbour hold for the victim's address after the ARP attack. */
  readonly hostSees: string | null;
  readonly neighbourSees: string | null;
  /** `SRC_IP TEXT` of each datagram the host and the neighbour received. */
  readonly hostGot: readonly string[];
  readonly neighbourGot: readonly string[];
  /** Whether the bridge learned the forged source MAC (what MAC flooding fills its table with). */
  readonly forgedMacLearned: boolean;
}

/** Fresh, correct neighbour entries for the victim, then every attack, then one honest datagram each way. */
async function attack(t: Test, { bridge, attacker: a, victim: v, neighbour: n }: Lab): Promise<Outcome> {
  execFileSync('ip', ['neigh', 'flush', 'to', v.ip, 'dev', bridge.dev]);
  execFileSync('nsenter', [`--net=/proc/${n.pid}/ns/net`, 'ip', 'neigh', 'flush', 'to', v.ip, 'dev', 'eth0']);
  await Promise.all([spoof(null, 'send', v.ip, '9', 'warm'), spoof(n.pid, 'send', v.ip, '9', 'warm')]);
  t.equal(neighbour(null, bridge.dev, v.ip), v.mac, 'before: the host knows the victim by its MAC');
  t.equal(neighbour(n.pid, 'eth0', v.ip), v.mac, 'before: the neighbour knows the victim by its MAC');

  // Locally administered, fresh each run (a learned one would linger in the bridge's table).
  const forgedMac = `02:${randomBytes(5).toString('hex').match(/../g)!.join(':')}`;
  const hostGot = await listen(t, null, bridge.gateway, HOST_PORT);
  const neighbourGot = await listen(t, n.pid, n.ip, PEER_PORT);
  await spoof(a.pid, 'arp', 'eth0', a.mac, a.mac, v.ip);
  await spoof(a.pid, 'udp', 'eth0', a.mac, bridge.mac, v.ip, bridge.gateway, String(HOST_PORT), 'forged-ip');
  await spoof(a.pid, 'udp', 'eth0', a.mac, n.mac, v.ip, n.ip, String(PEER_PORT), 'forged-ip');
  await spoof(a.pid, 'udp', 'eth0', forgedMac, n.mac, a.ip, n.ip, String(PEER_PORT), 'forged-mac');
  await spoof(a.pid, 'send', bridge.gateway, String(HOST_PORT), 'honest');
  await spoof(a.pid, 'send', n.ip, String(PEER_PORT), 'honest');
  return {
    hostSees: neighbour(null, bridge.dev, v.ip),
    neighbourSees: neighbour(n.pid, 'eth0', v.ip),
    hostGot: (await hostGot()).sort(),
    neighbourGot: (await neighbourGot()).sort(),
    forgedMacLearned: execFileSync('bridge', ['fdb', 'show', 'br', bridge.dev], { encoding: 'utf8' }).includes(forgedMac),
  };
}

function landed(t: Test, l: Lab, o: Outcome, why: string): void {
  t.equal(o.hostSees, l.attacker.mac, `${why}: the host's ARP entry for the victim flips to the attacker`);
  t.equal(o.neighbourSees, l.attacker.mac, `${why}: so does the neighbour's`);
  t.same(o.hostGot, [`${l.attacker.ip} honest`, `${l.victim.ip} forged-ip`].sort(), `${why}: the host gets the forged source address`);
  t.same(o.neighbourGot, [`${l.attacker.ip} forged-mac`, `${l.attacker.ip} honest`, `${l.victim.ip} forged-ip`].sort(), `${why}: the neighbour gets both forgeries`);
  t.ok(o.forgedMacLearned, `${why}: the bridge learns the forged MAC`);
}

function blocked(t: Test, l: Lab, o: Outcome): void {
  t.equal(o.hostSees, l.victim.mac, "the host's ARP entry for the victim stays");
  t.equal(o.neighbourSees, l.victim.mac, "the neighbour's stays");
  t.same(o.hostGot, [`${l.attacker.ip} honest`], 'the host gets the honest datagram only');
  t.same(o.neighbourGot, [`${l.attacker.ip} honest`], 'the neighbour gets the honest datagram only');
  t.notOk(o.forgedMacLearned, 'the bridge never learns the forged MAC');
}

function enforcer(reports: Array<{ container: AlertContainer; drops: number }>, drifts: string[], clock: { now: number }): BridgeEnforcer {
  return new BridgeEnforcer(nftBridgeFilter(), pino({ level: 'silent' }), {
    onDriftRepaired: (drift) => drifts.push(drift),
    onSpoofing: (container, drops) => reports.push({ container, drops }),
    onFilterFailed: (_container, error) => {
      throw new Error(`bridge filter failed: ${error}`);
    },
  }, REPORT_WINDOW_MS, () => clock.now);
}

async function applyAll(e: BridgeEnforcer, l: Lab, p: Policy): Promise<void> {
  for (const { id } of [l.attacker, l.victim, l.neighbour]) {
    const facts = (await engine.readFacts(id))!;
    await e.apply({ facts, decision: evaluate(p, facts, { relabel: null, veths: await bridgeVeths(facts.state.pid) }) });
  }
  // Every container judged, as at the end of the daemon's reconcile: over a table an earlier test left, the start-up's changes go out now.
  await e.reconciled();
}

t.before(async () => {
  removeTable();
  await removeTestContainers(SUITE);
  await docker.getNetwork(USER_NET).remove().catch(() => {});
  await docker.createNetwork({ Name: USER_NET, Driver: 'bridge', Labels: { 'dw-test.suite': 'bridge' } });
  await docker.getNetwork(V6_NET).remove().catch(() => {});
  await docker.createNetwork({ Name: V6_NET, Driver: 'bridge', EnableIPv6: true, IPAM: { Config: [{ Subnet: V6_SUBNET }] }, Labels: { 'dw-test.suite': 'bridge' } });
});
t.teardown(async () => {
  removeTable();
  await removeTestContainers(SUITE);
  await docker.getNetwork(USER_NET).remove().catch(() => {});
  await docker.getNetwork(V6_NET).remove().catch(() => {});
});

t.test('default bridge: spoofing lands without the filter and with the policy off, and is stopped with it', async (t) => {
  const l = await lab(t, 'bridge');
  t.equal(l.bridge.dev, 'dwtest0');
  removeTable();
  landed(t, l, await attack(t, l), 'no filter');

  const reports: Array<{ container: AlertContainer; drops: number }> = [];
  const drifts: string[] = [];
  const clock = { now: 1_000_000 };
  const e = enforcer(reports, drifts, clock);
  await applyAll(e, l, policy('version: 1\n'));
  t.equal(e.ports().length, 3, 'three bridge ports filtered');
  blocked(t, l, await attack(t, l));

  const check = nft('list', 'chain', 'bridge', 'dockwarden_bridge', 'check');
  t.match(check, /arp saddr ether \. arp saddr ip != @arps counter packets [3-9]\d* bytes \d+ jump spoofed/, 'the ARP drops are counted');
  t.match(check, /ether saddr != @macs counter packets [1-9]/, 'the forged MAC is counted');
  t.match(check, /ip saddr != @addrs4 counter packets [2-9]/, 'the forged source addresses are counted');

  await e.checkSpoofing();
  t.equal(reports.length, 1, 'one report');
  t.equal(reports[0]?.container.id, l.attacker.id, 'for the attacker, not its victims');
  t.ok((reports[0]?.drops ?? 0) >= 6, `its drops counted (${reports[0]?.drops})`);
  await spoof(l.attacker.pid, 'arp', 'eth0', l.attacker.mac, l.attacker.mac, l.victim.ip);
  await e.checkSpoofing();
  t.equal(reports.length, 1, 'within the window: no second report');
  clock.now += REPORT_WINDOW_MS;
  await e.checkSpoofing();
  t.same(reports.slice(1).map((r) => [r.container.id, r.drops]), [[l.attacker.id, 3]], 'after it: the drops since the last report');

  await applyAll(e, l, policy('version: 1\nnetwork: { anti-spoofing: off }\n'));
  t.equal(e.ports().length, 0, 'policy off: no port filtered');
  t.notMatch(nft('list', 'set', 'bridge', 'dockwarden_bridge', 'ports'), /veth/, 'and none in the kernel');
  landed(t, l, await attack(t, l), 'policy off');
  t.same(drifts, [], 'no drift along the way');
});

t.test('user-defined network: stopped; an excepted network is not filtered; drift is repaired', async (t) => {
  const l = await lab(t, USER_NET);
  t.match(l.bridge.dev, /^br-[0-9a-f]{12}$/);
  const drifts: string[] = [];
  const e = enforcer([], drifts, { now: 0 });
  await applyAll(e, l, policy('version: 1\n'));
  blocked(t, l, await attack(t, l));
  t.equal(await e.repairDrift(), null, 'no drift after applying');

  const [attackerPort] = e.ports().filter((p) => p.containerId === l.attacker.id);
  nft('delete', 'element', 'bridge', 'dockwarden_bridge', 'ports', `{ "${attackerPort!.ifname}" }`);
  t.equal(await e.repairDrift(), 'the bridge table differs from what dockwarden applied');
  t.match(nft('list', 'set', 'bridge', 'dockwarden_bridge', 'ports'), attackerPort!.ifname, 'the removed port is back');
  removeTable();
  t.equal(await e.repairDrift(), 'table bridge dockwarden_bridge is missing');
  t.same(drifts, ['the bridge table differs from what dockwarden applied', 'table bridge dockwarden_bridge is missing']);
  blocked(t, l, await attack(t, l));

  await e.forget(l.attacker.id);
  t.notMatch(nft('list', 'set', 'bridge', 'dockwarden_bridge', 'ports'), attackerPort!.ifname, 'a forgotten container leaves no element');
  await applyAll(e, l, policy(`version: 1\nnetwork: { exceptions: [${USER_NET}] }\n`));
  t.equal(e.ports().length, 0, 'the excepted network has no filtered port');
  landed(t, l, await attack(t, l), 'excepted network');
});

interface Outcome6 {
  readonly neighbourSees: string | null;
  readonly neighbourGot: readonly string[];
}

/** IPv6: an unsolicited neighbour advertisement claiming the victim's address, a forged source, an honest datagram. */
async function attack6(t: Test, { attacker: a, victim: v, neighbour: n }: Lab): Promise<Outcome6> {
  execFileSync('nsenter', [`--net=/proc/${n.pid}/ns/net`, 'ip', '-6', 'neigh', 'flush', 'to', v.ip6, 'dev', 'eth0']);
  await spoof(n.pid, 'send', v.ip6, '9', 'warm');
  for (let i = 0; i < 20 && neighbour(n.pid, 'eth0', v.ip6) === null; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(neighbour(n.pid, 'eth0', v.ip6), v.mac, 'before: the neighbour knows the victim by its MAC');
  const got = await listen(t, n.pid, n.ip6, PEER_PORT);
  await spoof(a.pid, 'na', 'eth0', a.mac, a.mac, v.ip6);
  await spoof(a.pid, 'udp6', 'eth0', a.mac, n.mac, v.ip6, n.ip6, String(PEER_PORT), 'forged-ip');
  await spoof(a.pid, 'send', n.ip6, String(PEER_PORT), 'honest');
  return { neighbourSees: neighbour(n.pid, 'eth0', v.ip6), neighbourGot: (await got()).sort() };
}

t.test('IPv6 network: neighbour advertisements and source addresses of others are stopped', async (t) => {
  const l = await lab(t, V6_NET);
  t.match(l.victim.ip6, /^2001:db8:b1d6::/);
  removeTable();
  const open = await attack6(t, l);
  t.equal(open.neighbourSees, l.attacker.mac, "no filter: the neighbour's entry for the victim flips to the attacker");
  t.same(open.neighbourGot, [`${l.attacker.ip6} honest`, `${l.victim.ip6} forged-ip`].sort(), 'no filter: the forged source arrives');

  const e = enforcer([], [], { now: 0 });
  await applyAll(e, l, policy('version: 1\n'));
  const closed = await attack6(t, l);
  t.equal(closed.neighbourSees, l.victim.mac, "the neighbour's entry stays");
  t.same(closed.neighbourGot, [`${l.attacker.ip6} honest`], 'only the honest datagram arrives (its neighbour discovery passed the filter)');
  t.match(nft('list', 'chain', 'bridge', 'dockwarden_bridge', 'check'), /@th,64,128 != @targets counter packets [3-9]/, 'the advertisements are counted');
});
