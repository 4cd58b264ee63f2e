/**
 * Found by the chaos soak (scripts/bench/chaos.ts, issue #15): Docker hands a removed container's
 * address to the next one. While dockwarden is down, the judged endpoint of the removed container
 * (address . protocol . container port) stayed in the ruleset, so a new container given that address
 * and publishing a new host port was reachable from every source — past the fail-closed baseline —
 * until the daemon came back. Real dockerd, real netfilter, a real client in a network namespace.
 */
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judged } from '../helpers/daemon.js';
import { docker, removeTestContainers, runContainer } from '../helpers/docker.js';
import { BACKENDS, cleanSlate, firewallDaemon } from '../helpers/firewall-lab.js';
import { createClient, HOST_ADDR } from '../helpers/netns.js';
import { eventuallyReaches, reaches } from '../helpers/probe.js';

const GOOD = '198.51.100.10';
const OTHER = '198.51.100.11';
const NETWORK = 'dw-reuse';
const SUBNET = '10.219.77.0/24';
const ADDRESS = '10.219.77.10';
const policy = `version: 1
ports:
  default: deny
  rules:
    - { name: reuse, match: { port: 18140-18141/tcp }, allow: [${GOOD}] }
`;

/** A container on NETWORK at ADDRESS, so the second one gets exactly the first one's address. */
const onAddress = (hostPort: number): Promise<string> =>
  runContainer({ publish: [`${hostPort}:80/tcp`], hostConfig: { NetworkMode: NETWORK }, networkingConfig: { EndpointsConfig: { [NETWORK]: { IPAMConfig: { IPv4Address: ADDRESS } } } } });

cleanSlate(t);

for (const backend of BACKENDS) {
  t.test(`${backend}: a container started while the daemon is down, on a removed container's address, is closed until judged`, async (t) => {
    await docker.getNetwork(NETWORK).remove().catch(() => {});
    await docker.createNetwork({ Name: NETWORK, Driver: 'bridge', IPAM: { Config: [{ Subnet: SUBNET }] } });
    t.teardown(async () => {
      await removeTestContainers();
      await docker.getNetwork(NETWORK).remove().catch(() => {});
    });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    const stateDir = mkdtempSync(join(tmpdir(), 'dw-reuse-state-'));

    const old = await onAddress(18140);
    const first = firewallDaemon(t, backend, policy, stateDir);
    await first.waitForLog(judged(old));
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18140), 'judged: the allowed source reaches the first container');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18140), 'the denied one does not');
    t.equal(await first.stop(), 0, 'the daemon stops; its rules stay');

    await docker.getContainer(old).remove({ force: true });
    const reused = await onAddress(18141);
    t.equal((await docker.getContainer(reused).inspect()).NetworkSettings.Networks[NETWORK]?.IPAddress, ADDRESS, 'the new container has the removed one’s address');
    await new Promise((r) => setTimeout(r, 300)); // let Docker's own rules settle
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18141), 'fail-closed: the denied source does not reach the new port before it is judged');
    t.notOk(await reaches(client, GOOD, HOST_ADDR, 18141), 'nor does the allowed one');

    const second = firewallDaemon(t, backend, policy, stateDir);
    await second.waitForLog(judged(reused));
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18141), 'once judged, the allowed source gets in');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18141), 'and only it');
    t.equal(await second.stop(), 0);
  });
}
