/**
 * Bridge isolation as installed (issue 13): the daemon runs as root with exactly the capabilities
 * systemd/dockwarden.service grants (`setpriv`, bounding set and ambient set read from the unit) and
 * still finds and filters every container's bridge port; a container's router advertisements and
 * DHCP/DHCPv6 server replies never reach its neighbour; a filter that cannot be applied is an error,
 * an alert and a metric; a link a container forges to name another container's veth is not its port.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { bridgeVeths } from '../../src/adapters/netns/bridge-veths.js';
import type { Alert } from '../../src/domain/alerts/alert.js';
import { bridgeOf, hostVeth, neighbour, peer, sniff, spoof, type Peer } from '../helpers/bridge-lab.js';
import { CLI, spawnDaemon, type DaemonProcess, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';
import { asInstalled } from '../helpers/unit-caps.js';
import { scrape } from '../helpers/metrics.js';

const SUITE = 'dw-test.suite=evasion-bridge';
const POLICY = 'version: 1\nports: { default: allow }\n';

const dockwarden = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DOCKWARDEN_FIREWALL_BACKEND: 'nftables' } });
const portsSet = () => execFileSync('nft', ['list', 'set', 'bridge', 'dockwarden_bridge', 'ports'], { encoding: 'utf8' });

/** The capability names in a /proc/PID/status mask line, sorted. */
function capsOf(pid: number, field: 'CapBnd' | 'CapEff'): string[] {
  const mask = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm'))![1]!;
  const decoded = execFileSync('capsh', [`--decode=${mask}`], { encoding: 'utf8' }).trim();
  return decoded.split('=')[1]!.split(',').filter((c) => c !== '').map((c) => c.replace(/^cap_/, '')).sort();
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; !condition(); await new Promise((r) => setTimeout(r, 100))) if (Date.now() > end) return false;
  return true;
}

async function installedDaemon(t: Test): Promise<DaemonProcess> {
  dockwarden('firewall', 'remove');
  t.teardown(() => removeTestContainers(SUITE));
  const { wrapper, bounding } = asInstalled();
  const daemon = spawnDaemon({ policy: POLICY, dockerSocket: DOCKER_SOCKET, wrapper });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'reconciled');
  t.same(capsOf(daemon.child.pid!, 'CapBnd'), [...bounding].sort(), "the daemon runs with the unit's bounding set");
  t.same(capsOf(daemon.child.pid!, 'CapEff'), [...bounding].sort(), 'and holds nothing beyond it');
  return daemon;
}

const start = async (): Promise<Peer> => peer(await runContainer({ labels: { 'dw-test.suite': 'evasion-bridge' } }), 'bridge');

t.teardown(async () => {
  dockwarden('firewall', 'remove');
  await removeTestContainers(SUITE);
});

t.test("under the unit's capabilities the daemon finds and filters every bridge port", async (t) => {
  const daemon = await installedDaemon(t);
  const [attacker, victim] = [await start(), await start()];
  const names = [attacker, victim].map((p) => hostVeth(p.pid));
  t.ok(await waitFor(() => names.every((n) => portsSet().includes(`"${n}"`)), 10_000), 'both containers are bridge ports filtered within 10 s of their start');

  const { dev } = await bridgeOf('bridge');
  execFileSync('ip', ['neigh', 'flush', 'to', victim.ip, 'dev', dev]);
  await spoof(null, 'send', victim.ip, '9', 'warm');
  await spoof(attacker.pid, 'arp', 'eth0', attacker.mac, attacker.mac, victim.ip);
  t.equal(neighbour(null, dev, victim.ip), victim.mac, "an ARP spoof is dropped: the host's entry for the victim stays");
  t.notOk(daemon.logs.some((l) => l.msg === 'container task failed'), 'no container task failed');
});

t.test('router advertisements and DHCP server replies from a container never reach its neighbour, unless its network is excepted', async (t) => {
  const daemon = await installedDaemon(t);
  const [attacker, victim] = [await start(), await start()];
  const port = hostVeth(attacker.pid);
  t.ok(await waitFor(() => portsSet().includes(`"${port}"`), 10_000), "the attacker's port is filtered");

  const linkLocal = (await spoof(attacker.pid, 'lladdr', attacker.mac)).trim();
  const bcast = ['eth0', attacker.mac, 'ff:ff:ff:ff:ff:ff', attacker.ip, '255.255.255.255'];
  const allNodes = ['eth0', attacker.mac, '33:33:00:00:00:01', linkLocal, 'ff02::1'];
  /** What the victim receives of honest frames and of a RA, a DHCP offer and a DHCPv6 advertise, by name. */
  const exchange = async (): Promise<string[]> => {
    const marker = `m${process.pid}x${Date.now().toString(36)}`;
    const collect = await sniff(t, victim.pid, 'eth0', marker);
    await spoof(attacker.pid, 'udp', ...bcast, '9', `${marker}-honest4`);
    await spoof(attacker.pid, 'udp6', ...allNodes, '9', `${marker}-honest6`);
    await spoof(attacker.pid, 'udp', ...bcast, '68', `${marker}-dhcp-offer`, '67');
    await spoof(attacker.pid, 'udp6', ...allNodes, '546', `${marker}-dhcp6-advertise`, '547');
    await spoof(attacker.pid, 'ra', 'eth0', attacker.mac, `${marker}-router-advert`);
    return (await collect()).map((line) => line.split(' ')[1]!.slice(marker.length + 1)).sort();
  };
  t.same(await exchange(), ['honest4', 'honest6'], 'the neighbour receives the honest IPv4 and IPv6 frames, not the RA, DHCP offer or DHCPv6 advertise');

  writeFileSync(daemon.policyFile, `${POLICY}network: { exceptions: [bridge] }\n`);
  daemon.child.kill('SIGHUP');
  t.ok(await waitFor(() => !portsSet().includes(`"${port}"`), 10_000), 'with the network excepted, the port is no longer filtered');
  t.same(await exchange(), ['dhcp-offer', 'dhcp6-advertise', 'honest4', 'honest6', 'router-advert'], 'and everything reaches the neighbour');
});

t.test('a bridge filter that cannot be applied is an error, an alert and a metric', async (t) => {
  // The fault: a container whose namespace holds more links than the lookup reads (native/netns_links.c
  // LINKS_MAX, 1,024), as one with NET_ADMIN can make; made from the host before the daemon starts.
  const victim = await start();
  const batch = join(mkdtempSync(join(tmpdir(), 'dw-links-')), 'batch');
  t.teardown(() => rmSync(dirname(batch), { recursive: true, force: true }));
  writeFileSync(batch, Array.from({ length: 520 }, (_, i) => `link add dwa${i} type veth peer name dwb${i}\n`).join(''));
  execFileSync('nsenter', [`--net=/proc/${victim.pid}/ns/net`, '--', 'ip', '-batch', batch]);
  const daemon = await installedDaemon(t);
  const failed = (l: LogLine) => l.msg === 'bridge isolation not applied to a container' && (l.container as { id?: string } | undefined)?.id === victim.id;
  const error = await daemon.waitForLog(failed);
  t.equal(error.level, 50, 'logged as an error');
  const alert = (await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as Alert).check === 'daemon.bridge-filter-failed')).alert as Alert;
  t.equal(alert.container?.id, victim.id, 'the alert names the container left unfiltered');
  t.equal(alert.severity, 'high');
  t.match((await scrape({ socketPath: daemon.metricsSocket })).body, /^dockwarden_bridge_filter_failures_total [1-9]\d*$/m, 'the failure is counted');
});

t.test("a container's own link claiming another container's veth as its peer is not taken for its port", async (t) => {
  // Real namespaces and veths in the container layout, with chosen indexes: B's host veth (index
  // HOST_B) pairs with B's eth0 (PEER_B). A (with NET_ADMIN in its namespace) makes a veth whose
  // index is PEER_B and whose peer, moved into a namespace of its own, has index HOST_B: seen from A,
  // it names B's port as its peer, with A's MAC.
  const [HOST_A, PEER_A, HOST_B, PEER_B] = [46101, 46102, 46103, 46104];
  const tag = `evb${process.pid % 10000}`;
  const [bridge, nsA, nsB, nsC] = [`${tag}br`, `${tag}-a`, `${tag}-b`, `${tag}-c`];
  const ip = (...args: string[]) => execFileSync('ip', args);
  for (const ns of [nsA, nsB, nsC]) {
    ip('netns', 'add', ns);
    t.teardown(() => ip('netns', 'del', ns));
  }
  ip('link', 'add', bridge, 'type', 'bridge');
  t.teardown(() => ip('link', 'del', bridge));
  const macA = '02:42:c6:33:64:0a';
  ip('link', 'add', `${tag}va`, 'index', String(HOST_A), 'master', bridge, 'type', 'veth', 'peer', 'name', 'eth0', 'index', String(PEER_A), 'address', macA, 'netns', nsA);
  ip('link', 'add', `${tag}vb`, 'index', String(HOST_B), 'master', bridge, 'type', 'veth', 'peer', 'name', 'eth0', 'index', String(PEER_B), 'address', '02:42:c6:33:64:0b', 'netns', nsB);
  ip('-n', nsA, 'link', 'add', 'forged', 'index', String(PEER_B), 'address', macA, 'type', 'veth', 'peer', 'name', 'y', 'index', String(HOST_B), 'netns', nsC);
  const sleeper = spawn('ip', ['netns', 'exec', nsA, 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => void sleeper.kill('SIGKILL'));
  t.ok(await waitFor(() => readFileSync(`/proc/${sleeper.pid}/cmdline`, 'utf8').startsWith('sleep'), 5_000), 'a process runs in A');

  const veths = await bridgeVeths(sleeper.pid!);
  t.same([...veths], [[macA, `${tag}va`]], "A's MAC maps to A's own port only, never to B's");
});

t.test('a container that changes its MAC inside its namespace is reported, not left unfiltered in silence', async (t) => {
  t.teardown(() => removeTestContainers(SUITE));
  const changed = '02:42:c6:33:64:99';
  const id = await runContainer({
    labels: { 'dw-test.suite': 'evasion-bridge' },
    cmd: ['sh', '-c', `ip link set eth0 address ${changed} && exec sleep 86400`],
    hostConfig: { CapAdd: ['NET_ADMIN'] },
  });
  const { pid } = await peer(id, 'bridge');
  const eth0Mac = () => (JSON.parse(execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ address: string }>)[0]?.address;
  t.ok(await waitFor(() => eth0Mac() === changed, 10_000), 'the container changed its MAC');

  const daemon = await installedDaemon(t);
  const alert = (await daemon.waitForLog((l) => l.msg === 'alert' && (l.alert as Alert).check === 'daemon.bridge-filter-failed' && (l.alert as Alert).container?.id === id)).alert as Alert;
  t.match(alert.details.error, /a bridge port carries a MAC none of its networks has/, 'the start-up reconcile alerts about it');
});
