import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DaemonProcess } from '../helpers/daemon.js';
import { runContainer } from '../helpers/docker.js';
import { addIpv6, BACKENDS, bridgeNetwork, cleanSlate, dockwarden, firewallDaemon, GOOD6, HOST6, OTHER6, type Backend } from '../helpers/firewall-lab.js';
import { createClient, HOST_ADDR } from '../helpers/netns.js';
import { eventuallyReaches, holdConnection, reaches } from '../helpers/probe.js';

const TEST_ENV = resolve(import.meta.dirname, '../../scripts/test-env.sh');
const GOOD = '198.51.100.10';
const OTHER = '198.51.100.11';

const policy = (goodSources: string) => `version: 1
sources:
  good: [${goodSources}]
ports:
  default: deny
  rules:
    - { name: web, match: { port: 18100/tcp }, allow: [good] }
    - { name: second, match: { port: 18101/tcp }, allow: [${OTHER}] }
    - { name: late, match: { port: 18103/tcp }, allow: [good] }
    - { name: echo, match: { port: 18104/tcp }, allow: [good] }
    - { name: bound, match: { port: 18105/tcp }, allow: [good] }
    - { name: user-net, match: { port: 18106/tcp }, allow: [good] }
    - { name: v6, match: { port: 18107/tcp }, allow: ["${GOOD6}"] }
`;

for (const backend of BACKENDS) t.test(`${backend} backend`, async (t) => scenarios(t, backend));

function scenarios(t: Test, backend: Backend): void {
const daemon = (t: Test): DaemonProcess => firewallDaemon(t, backend, policy(GOOD));
cleanSlate(t);

t.test('published ports admit exactly the sources the policy allows', async (t) => {
  const client = createClient({ addrs: [GOOD, OTHER], t });
  addIpv6(client);
  await runContainer({ publish: ['18100:80/tcp', '18101:80/tcp', '18102:80/tcp', `${HOST_ADDR}:18105:80/tcp`, '18107:80/tcp'] });
  await bridgeNetwork(t, 'dw-ports-net');
  await runContainer({ publish: ['18106:80/tcp'], hostConfig: { NetworkMode: 'dw-ports-net' } });
  const d = daemon(t);
  await d.waitForLog((l) => l.msg === 'reconciled');

  t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18100), 'allowed source reaches its port');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18100), 'another source does not, on the same port');
  t.ok(await reaches(client, OTHER, HOST_ADDR, 18101), 'a second port of the container follows its own rule');
  t.notOk(await reaches(client, GOOD, HOST_ADDR, 18101), 'and admits only that rule\'s sources');
  t.notOk(await reaches(client, GOOD, HOST_ADDR, 18102), 'a port no rule matches is closed (ports.default: deny)');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18102));
  t.ok(await reaches(client, GOOD, HOST_ADDR, 18105), 'a port bound to one host address admits its source');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18105), 'and refuses others');
  t.ok(await reaches(client, GOOD, HOST_ADDR, 18106), 'a container on a user-defined bridge network admits its source');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18106), 'and refuses others');
  if (backend === 'nftables') {
    // Docker without IPv6 reaches containers from [::] through docker-proxy, on `input`, not `forward`:
    // the prerouting check by host port covers it; the iptables backend (a FORWARD chain) cannot.
    t.ok(await reaches(client, GOOD6, `[${HOST6}]`, 18107), 'an allowed IPv6 source gets in (docker-proxy path)');
    t.notOk(await reaches(client, OTHER6, `[${HOST6}]`, 18107), 'another IPv6 source does not');
    t.notOk(await reaches(client, GOOD6, `[${HOST6}]`, 18100), 'IPv4-only allowances admit no IPv6 source');
  }
  t.equal(await d.stop(), 0);
  t.match(dockwarden(backend, 'firewall', 'show'), backend === 'nftables' ? /table inet dockwarden/ : /-A DOCKWARDEN .*--ctorigdstport 18100/, 'rules stay after the daemon stops');
  t.ok(await reaches(client, GOOD, HOST_ADDR, 18100), 'and keep admitting while it is down');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18100), 'and keep refusing');
});

t.test('a container started while dockwarden is down is closed until it is judged', async (t) => {
  const client = createClient({ addrs: [GOOD, OTHER], t });
  const first = daemon(t);
  await first.waitForLog((l) => l.msg === 'reconciled');
  t.equal(await first.stop(), 0);

  await runContainer({ publish: ['18103:80/tcp'] });
  await new Promise((r) => setTimeout(r, 300)); // let Docker's own rules settle
  t.notOk(await reaches(client, GOOD, HOST_ADDR, 18103), 'fail-closed: not even an allowed source gets in before dockwarden judges it');

  const second = daemon(t);
  t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18103), 'once judged, the allowed source gets in');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18103));
  t.equal(await second.stop(), 0);
});

t.test('a policy reload that removes a source cuts its open connection', async (t) => {
  const client = createClient({ addrs: [GOOD, OTHER], t });
  await runContainer({ publish: ['18104:9000/tcp'], cmd: ['nc', '-ll', '-p', '9000', '-e', '/bin/cat'] });
  const d = daemon(t);
  await d.waitForLog((l) => l.msg === 'reconciled');
  // Retry until the firewall has judged the container (before that the baseline refuses everyone).
  let holder = holdConnection(client, GOOD, HOST_ADDR, 18104);
  for (let tries = 1; !(await holder.connected.then(() => true, () => false)); tries++) {
    if (tries === 30) t.fail('the allowed source never got a connection');
    holder = holdConnection(client, GOOD, HOST_ADDR, 18104);
  }
  writeFileSync(d.policyFile, policy(OTHER));
  await d.waitForLog((l) => l.msg === 'policy reloaded');
  t.equal(await holder.exited, 4, 'the established connection stops getting answers');
  const again = holdConnection(client, GOOD, HOST_ADDR, 18104);
  t.equal(await again.exited, 3, 'and cannot connect again');
  t.equal(await d.stop(), 0);
});

t.test('nft flush ruleset is repaired; a dockerd restart keeps every port enforced', async (t) => {
  const client = createClient({ addrs: [GOOD, OTHER], t });
  await runContainer({ publish: ['18100:80/tcp'], hostConfig: { RestartPolicy: { Name: 'always' } } });
  const d = daemon(t);
  await d.waitForLog((l) => l.msg === 'reconciled');
  t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18100));
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18100), 'enforced before the flush');

  // `flush ruleset` also takes Docker's own rules: its restart below (or this teardown) brings them back.
  t.teardown(() => execFileSync('bash', [TEST_ENV, 'up'], { stdio: 'ignore' }));
  t.teardown(() => execFileSync('bash', [TEST_ENV, 'stop-dockerd'], { stdio: 'ignore' }));
  execFileSync('nft', ['flush', 'ruleset']);
  const repaired = await d.waitForLog((l) => l.msg === 'firewall drift repaired', 10_000);
  t.match((repaired.firewall as { drift: string }).drift, /missing|differ/);
  t.match(dockwarden(backend, 'firewall', 'show'), /198\.51\.100\.10/, 'our allowances are back');

  execFileSync('bash', [TEST_ENV, 'stop-dockerd'], { stdio: 'ignore' });
  execFileSync('bash', [TEST_ENV, 'up'], { stdio: 'ignore' });
  await d.waitForLog((l) => l.msg === 'reconnected to Docker', 60_000);
  t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18100, 20_000), 'after the restart the allowed source gets in again');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, 18100), 'and the other is still refused');
  t.equal(await d.stop(), 0);
});
}
