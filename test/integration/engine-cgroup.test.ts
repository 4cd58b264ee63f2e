/**
 * The rule that closes docker-proxy's ports not judged by dockerd's cgroup (render.ts, README "Published
 * ports" › The guard), with real traffic: listeners in cgroups v2 of the test's own, a client from a
 * second network namespace (198.51.100.0/24 only). The table is loaded with `nsenter --net`, as the
 * daemon's nft runs: `ip netns exec` mounts a sysfs of the namespace over /sys, with no cgroup tree in it.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { nftablesBackend } from '../../src/adapters/nftables/backend.js';
import { renderTable } from '../../src/adapters/nftables/render.js';
import { cgroup2Mount } from '../../src/adapters/proc/engine-cgroup.js';
import { planAll, planContainer, type EngineCgroup, type FirewallPlan } from '../../src/domain/firewall/plan.js';
import { parseCidr } from '../../src/domain/net/cidr.js';
import { makeFacts } from '../helpers/facts.js';
import { SERVER_JS, connects, netns } from '../helpers/packet-lab.js';

const GOOD = '198.51.100.10';
const BAD = '198.51.100.11';
const JUDGED = 18601;
const UNJUDGED = 18602;
const ELSEWHERE = 18603;

/** server 198.51.100.1 ── client GOOD and BAD. */
function topology(t: Test): { server: string; client: string } {
  const server = netns(t, 'dwcg', '-s');
  const client = netns(t, 'dwcg', '-c');
  const ip = (...args: string[]) => execFileSync('ip', args);
  ip('-n', server, 'link', 'add', 'cli0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client);
  ip('-n', server, 'addr', 'add', '198.51.100.1/24', 'dev', 'cli0');
  for (const a of [GOOD, BAD]) ip('-n', client, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
  for (const [ns, dev] of [[server, 'lo'], [server, 'cli0'], [client, 'lo'], [client, 'eth0']] as const) ip('-n', ns, 'link', 'set', dev, 'up');
  return { server, client };
}

/** A cgroup v2 of the test's own; its listeners end, and it goes, with the test. */
function cgroup(t: Test, mount: string): { name: string; dir: string; listen(server: string, port: number): Promise<void> } {
  const name = `dwcg-${randomBytes(3).toString('hex')}`;
  const dir = `${mount}/${name}`;
  mkdirSync(dir);
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    await Promise.all(children.map((c) => new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve(null) : (c.once('exit', resolve), c.kill('SIGKILL'))))));
    rmdirSync(dir);
  });
  return {
    name,
    dir,
    // Into the cgroup before it execs the listener, so the listening socket is born there.
    listen: (server, port) => new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', `${dir}/cgroup.procs`, 'nsenter', `--net=/run/netns/${server}`, '--', process.execPath, '-e', SERVER_JS, '0.0.0.0', String(port)],
        { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      child.stdout.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`listener on ${port} exited ${code}`)));
    }),
  };
}

function load(server: string, script: string): void {
  execFileSync('nsenter', [`--net=/run/netns/${server}`, '--', 'nft', '-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] });
}

/** One container publishing JUDGED to GOOD alone. */
function judgedPlan(engineCgroup?: EngineCgroup): FirewallPlan {
  const facts = makeFacts({ id: 'c', networks: [{ name: 'n', networkId: 'n', ipv4: '10.0.0.2', ipv6: '', mac: '' }] });
  const elements = planContainer(facts, {
    containerId: 'c',
    ports: [{ port: { proto: 'tcp', hostIp: '0.0.0.0', hostPort: JUDGED, containerPort: 80 }, rule: 'web', allow: [parseCidr(`${GOOD}/32`)!], narrowedByLabel: false, labelError: null }],
  });
  return planAll([elements], { defaultDeny: true, bridges: [], ...(engineCgroup ? { engineCgroup } : {}) });
}

const mount = cgroup2Mount();

t.test('a listener in dockerd\'s cgroup is closed to a non-loopback client unless its port is judged; one in another cgroup is untouched', { skip: mount === null && 'no cgroup v2 mounted under /sys/fs/cgroup' }, async (t) => {
  const { server, client } = topology(t);
  const engine = cgroup(t, mount!);
  const other = cgroup(t, mount!);
  await engine.listen(server, JUDGED);
  await engine.listen(server, UNJUDGED);
  await other.listen(server, ELSEWHERE);
  const reach = async (): Promise<Record<string, boolean>> => ({
    judgedGood: await connects(client, GOOD, JUDGED),
    judgedBad: await connects(client, BAD, JUDGED),
    unjudgedGood: await connects(client, GOOD, UNJUDGED),
    unjudgedBad: await connects(client, BAD, UNJUDGED),
    elsewhereBad: await connects(client, BAD, ELSEWHERE),
  });

  load(server, renderTable(judgedPlan()));
  t.same(await reach(), { judgedGood: true, judgedBad: false, unjudgedGood: true, unjudgedBad: true, elsewhereBad: true },
    'without the cgroup (today\'s behaviour): a port not judged is open to every source');

  // As readEngineCgroup gives it: the mount as a directory of /sys/fs/cgroup (`unified` here, hybrid), the path below it.
  const engineCgroup = { mount: mount!.slice('/sys/fs/cgroup/'.length), path: engine.name, id: statSync(engine.dir).ino };
  load(server, renderTable(judgedPlan(engineCgroup)));
  t.same(await reach(), { judgedGood: true, judgedBad: false, unjudgedGood: false, unjudgedBad: false, elsewhereBad: true },
    'with it: the port not judged closed to every source, the judged one as judged, another cgroup\'s untouched');
  // The guard (owned by the daemon's `nft -i`, gone with a one-shot nft) is in flush-window.test.ts.
  const local = spawn('nsenter', [`--net=/run/netns/${server}`, '--', process.execPath, '-e', `require('net').connect(${UNJUDGED}, '127.0.0.1').once('data', () => process.exit(0)).once('error', () => process.exit(1))`]);
  t.equal(await new Promise((resolve) => local.once('exit', resolve)), 0, 'loopback is not filtered (the host\'s own clients, as Docker\'s DNAT leaves them)');
});

t.test('a cgroup nft cannot find leaves the table written without its rule, and says so', async (t) => {
  const server = netns(t, 'dwcg');
  const gone: unknown[] = [];
  // `ip netns exec` (the backend's `netns`): a sysfs with no cgroup tree, so no path is found there.
  const backend = nftablesBackend({ netns: server, engineCgroupGone: (error) => gone.push(error) });
  await backend.replace(judgedPlan({ mount: '', path: `dwcg-gone-${randomBytes(3).toString('hex')}`, id: 1 }));
  t.equal(gone.length, 1, 'reported once');
  t.match(String(gone[0]), /cgroupv2 path fails/);
  const table = await backend.show();
  t.match(table, /@wildcard4 jump decide4/, 'the table is there');
  t.notMatch(table, /cgroupv2/, 'without the rule');
  t.equal(await backend.drift(judgedPlan()), null, 'and as planned otherwise');
});
