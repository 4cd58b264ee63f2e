/**
 * Bridge isolation through the daemon: containers are filtered as they start, an ARP-spoofing
 * attempt becomes one `spoofing` alert naming the attacker, the table outlives the daemon, and
 * `dockwarden firewall show | remove` cover it.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import type { Alert } from '../../src/domain/alerts/alert.js';
import { bridgeOf, hostVeth, neighbour, peer, spoof } from '../helpers/bridge-lab.js';
import { CLI, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { DOCKER_SOCKET, removeTestContainers, runContainer } from '../helpers/docker.js';

const SUITE = 'dw-test.suite=bridge';
const dockwarden = (...args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, DOCKWARDEN_FIREWALL_BACKEND: 'nftables' } });
const portsSet = () => execFileSync('nft', ['list', 'set', 'bridge', 'dockwarden_bridge', 'ports'], { encoding: 'utf8' });
const tableExists = () => {
  try {
    execFileSync('nft', ['list', 'table', 'bridge', 'dockwarden_bridge'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

t.teardown(async () => {
  dockwarden('firewall', 'remove');
  await removeTestContainers(SUITE);
});

t.test('the daemon filters new containers and alerts once about a spoofing one', async (t) => {
  dockwarden('firewall', 'remove');
  const daemon = spawnDaemon({ policy: 'version: 1\nports: { default: allow }\n', dockerSocket: DOCKER_SOCKET });
  t.teardown(() => daemon.stop());
  await daemon.waitForLog((l) => l.msg === 'reconciled');

  const start = () => runContainer({ labels: { 'dw-test.suite': 'bridge' } });
  const [attacker, victim] = await Promise.all([peer(await start(), 'bridge'), peer(await start(), 'bridge')]);
  const { dev } = await bridgeOf('bridge');
  const names = [attacker, victim].map((p) => hostVeth(p.pid));
  for (let i = 0; i < 50 && !names.every((n) => portsSet().includes(`"${n}"`)); i++) await new Promise((r) => setTimeout(r, 100));
  t.ok(names.every((n) => portsSet().includes(`"${n}"`)), 'both containers are bridge ports filtered within 5 s of their start');

  execFileSync('ip', ['neigh', 'flush', 'to', victim.ip, 'dev', dev]);
  await spoof(null, 'send', victim.ip, '9', 'warm');
  await spoof(attacker.pid, 'arp', 'eth0', attacker.mac, attacker.mac, victim.ip);
  t.equal(neighbour(null, dev, victim.ip), victim.mac, "the host's ARP entry for the victim stays");

  const alert = (await daemon.waitForLog((l: LogLine) => l.msg === 'alert' && (l.alert as Alert).check === 'spoofing', 20_000)).alert as Alert;
  t.equal(alert.container?.id, attacker.id, 'the alert names the attacker');
  t.equal(alert.details.drops, 3, 'and counts its three dropped ARP replies');
  t.equal(alert.message, 'spoofed frames from a container dropped on its bridge');

  t.equal(await daemon.stop(), 0);
  t.ok(tableExists(), 'the bridge table outlives the daemon');
  t.match(dockwarden('firewall', 'show'), /table bridge dockwarden_bridge/);
  t.match(dockwarden('firewall', 'remove'), /bridge isolation table removed/);
  t.notOk(tableExists(), '`firewall remove` takes it out');
});
