/**
 * Compatibility: the iptables backend on a host whose `iptables` is the legacy variant, end to end.
 * The host is switched with update-alternatives and a dockerd of the test's own is started while it
 * is (its rules and DOCKER-USER in the legacy tables); the daemon, left to pick its backend's variant
 * the way it does in production (`iptables -V`), filters a published port for real clients. Every
 * change to the host is undone in teardown, also when the test fails.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { spawnDaemon } from '../helpers/daemon.js';
import { dockwarden } from '../helpers/firewall-lab.js';
import { TEST_IMAGE, DEFAULT_CMD } from '../helpers/docker.js';
import { legacyHost, LEGACY_SOCKET } from '../helpers/legacy-host.js';
import { createClient, HOST_ADDR } from '../helpers/netns.js';
import { eventuallyReaches, reaches } from '../helpers/probe.js';
import { asInstalled } from '../helpers/unit-caps.js';

const GOOD = '198.51.100.10';
const OTHER = '198.51.100.11';
const PORT = 18120;

const policy = `version: 1
sources:
  good: [${GOOD}]
ports:
  default: deny
  rules:
    - { name: web, match: { port: ${PORT}/tcp }, allow: [good] }
    - { name: late, match: { port: ${PORT + 1}/tcp }, allow: [good] }
`;

const tool = (file: string, ...args: string[]): string => execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

t.test('iptables-legacy host: the iptables backend filters a published port with real traffic', async (t) => {
  const host = await legacyHost();
  t.teardown(() => host.restore());
  t.match(tool('iptables-legacy', '-w', '-S', 'DOCKER-USER'), /^-N DOCKER-USER$/m, 'Docker made DOCKER-USER in the legacy tables');

  const client = createClient({ addrs: [GOOD, OTHER], t });
  const container = await host.docker.createContainer({
    Image: TEST_IMAGE, Cmd: DEFAULT_CMD, ExposedPorts: { '80/tcp': {} }, HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(PORT) }] } },
  });
  await container.start();

  // With the capabilities the unit grants: iptables-legacy needs CAP_NET_RAW besides CAP_NET_ADMIN.
  const d = spawnDaemon({ policy, dockerSocket: LEGACY_SOCKET, wrapper: asInstalled().wrapper, extraConfig: 'firewall:\n  backend: iptables\n  driftCheckSeconds: 1' });
  t.teardown(async () => {
    await d.stop('SIGKILL');
    // While legacy is still selected: the CLI picks the variant as the daemon does.
    dockwarden('iptables', 'firewall', 'remove');
  });
  await d.waitForLog((l) => l.msg === 'reconciled');

  t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, PORT), 'the allowed source reaches the published port');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, PORT), 'a denied source is refused');
  t.match(tool('iptables-legacy', '-w', '-S', 'DOCKER-USER'), /^-A DOCKER-USER -j DOCKWARDEN$/m, 'our jump is in the legacy DOCKER-USER');
  t.match(tool('iptables-legacy', '-w', '-S', 'DOCKWARDEN'), new RegExp(`--ctorigdstport ${PORT} .*-j DROP`), 'our chain is in the legacy tables');
  t.notMatch(tool('iptables-nft', '-w', '-S'), /DOCKWARDEN/, 'and nothing of ours in the nf_tables variant');

  // Drift in the legacy tables is seen and repaired.
  tool('iptables-legacy', '-w', '-F', 'DOCKWARDEN');
  await d.waitForLog((l) => l.msg === 'firewall drift repaired', 10_000);
  // The line is logged as the repair starts: wait for the chain to be back.
  for (const end = Date.now() + 10_000; !/-j DROP/.test(tool('iptables-legacy', '-w', '-S', 'DOCKWARDEN')) && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
  t.notOk(await reaches(client, OTHER, HOST_ADDR, PORT), 'until the daemon repairs it');
  t.ok(await reaches(client, GOOD, HOST_ADDR, PORT), 'the allowed source still gets in');

  // Fail-closed in the legacy tables too: a container started while the daemon is down stays closed.
  t.equal(await d.stop(), 0);
  const late = await host.docker.createContainer({
    Image: TEST_IMAGE, Cmd: DEFAULT_CMD, ExposedPorts: { '80/tcp': {} }, HostConfig: { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: String(PORT + 1) }] } },
  });
  await late.start();
  t.notOk(await reaches(client, GOOD, HOST_ADDR, PORT + 1), 'a port no one judged yet is closed while the daemon is down');
  t.notOk(await reaches(client, OTHER, HOST_ADDR, PORT), 'the judged port still refuses the denied source');
});
