/**
 * Compatibility: dockwarden against rootful Podman 4.3's Docker-compatible API (`podman system
 * service` on a socket of the test's own, test/helpers/podman.ts), the nftables backend beside
 * netavark's iptables rules. Real containers, real traffic, real kills. Podman is installed by
 * `scripts/test-env.sh install`; without it this file skips and says so.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { judged, spawnDaemon, type LogLine } from '../helpers/daemon.js';
import { dockwarden } from '../helpers/firewall-lab.js';
import { createClient, HOST_ADDR } from '../helpers/netns.js';
import { PODMAN_SOCKET, podmanInstalled, startPodman } from '../helpers/podman.js';
import { eventuallyReaches, reaches } from '../helpers/probe.js';

const [GOOD, OTHER] = ['198.51.100.10', '198.51.100.11'];
const PORT = 18130;

const POLICY = `version: 1
containers:
  capabilities: { forbidden: [NET_ADMIN, NET_RAW], action: kill }
  privileged: { action: kill }
  privileged-exec: { action: alert }
ports:
  default: deny
  rules: [{ name: web, match: { port: ${PORT}/tcp }, allow: [${GOOD}] }]
`;

const actedOn = (id: string, msg: string) => (l: LogLine) => l.msg === msg && (l.container as { id?: string } | undefined)?.id === id;
const checksOf = (line: LogLine) => ((line.violations ?? []) as Array<{ check: string }>).map((v) => v.check);

if (!podmanInstalled()) {
  // CI installs it (`scripts/test-env.sh install`): there a missing podman is a failure, never a skip.
  if (process.env.CI) t.fail('podman is not installed: `scripts/test-env.sh install` installs it, with netavark');
  else t.pass('skipped: no podman on this host (`scripts/test-env.sh install` installs it, with netavark)', { skip: true });
} else {
  t.test('Podman 4.3: events, inspect, ports and kills through its Docker-compatible API', async (t) => {
    const podman = await startPodman();
    t.teardown(() => podman.stop());
    dockwarden('nftables', 'firewall', 'remove');
    t.teardown(() => dockwarden('nftables', 'firewall', 'remove'));
    const client = createClient({ addrs: [GOOD, OTHER], t });

    const web = await podman.run({ publish: PORT });
    const d = spawnDaemon({ policy: POLICY, dockerSocket: PODMAN_SOCKET, extraConfig: 'firewall:\n  backend: nftables\n  driftCheckSeconds: 1' });
    t.teardown(() => d.stop('SIGKILL'));
    await d.waitForLog((l) => l.msg === 'reconciled');

    // Capabilities: Podman reports CapAdd/CapDrop against its own defaults, which here lack NET_RAW.
    const webJudged = await d.waitForLog(judged(web));
    t.same(checksOf(webJudged), [], 'a plain container holds none of the forbidden capabilities (none is configured against Podman\'s defaults)');
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, PORT), 'the allowed source reaches the published port (netavark DNAT, our filter)');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, PORT), 'a denied source is refused');
    const address = Object.values((await podman.docker.getContainer(web).inspect()).NetworkSettings.Networks)[0]!.IPAddress;
    t.notOk(await reaches(client, GOOD, address, 80), 'the container address routed to directly is refused');
    t.match(dockwarden('nftables', 'firewall', 'show'), /elements = \{[^}]*"podman0"/, 'the Podman network\'s bridge is known by its interface name');

    const raw = await podman.run({ hostConfig: { CapAdd: ['NET_RAW'] } });
    await d.waitForLog(actedOn(raw, 'container killed'));
    t.notOk((await podman.docker.getContainer(raw).inspect()).State.Running, 'a container given a forbidden capability is killed');

    const privileged = await podman.run({ hostConfig: { Privileged: true, Runtime: 'dw-host-caps' } });
    const killed = await d.waitForLog(actedOn(privileged, 'container killed'));
    t.ok(checksOf(killed).includes('privileged'), 'a privileged container is killed as privileged');

    // Podman says `exec` where dockerd says `exec_start`, and keeps the exec in ExecIDs after it ends.
    const execd = await podman.run({ hostConfig: { Runtime: 'dw-host-caps' } });
    const exec = await podman.docker.getContainer(execd).exec({ Cmd: ['true'], Privileged: true, AttachStdout: true });
    await exec.start({ Detach: true });
    const seen = await d.waitForLog((l) => l.msg === 'container judged' && (l.container as { id?: string }).id === execd && checksOf(l).includes('privileged-exec'));
    t.ok(seen, 'a privileged exec is seen');

    // Podman says `remove` where dockerd says `destroy`: the container is forgotten, its port with it.
    await podman.docker.getContainer(web).remove({ force: true });
    const gone = () => !dockwarden('nftables', 'firewall', 'show').includes(`${PORT}`);
    for (const end = Date.now() + 10_000; !gone() && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
    t.ok(gone(), 'a removed container\'s port leaves the ruleset');
    t.equal(await d.stop(), 0);
    t.notMatch(execFileSync('iptables-nft', ['-w', '-S'], { encoding: 'utf8' }), /DOCKWARDEN/, 'nothing of ours in iptables (the nftables backend)');
  });
}
