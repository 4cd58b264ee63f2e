/**
 * The firewall's edges (issue 13): ways around the published-port filter that a container author or a
 * LAN host could take. Real dockerd, real netfilter, real clients in a network namespace.
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judged, type DaemonProcess } from '../helpers/daemon.js';
import { docker, runContainer } from '../helpers/docker.js';
import { addIpv6, BACKENDS, bridgeNetwork, cleanSlate, dockwarden, firewallDaemon, GOOD6, HOST6, OTHER6, type Backend } from '../helpers/firewall-lab.js';
import { createClient, HOST_ADDR, type NetnsClient } from '../helpers/netns.js';
import { eventuallyReaches, reaches } from '../helpers/probe.js';

const GOOD = '198.51.100.10';
const OTHER = '198.51.100.11';

const policy = (portsDefault: 'deny' | 'allow', exceptions: readonly string[] = []) => `version: 1
sources:
  good: [${GOOD}]
ports:
  default: ${portsDefault}
  rules:
    - { name: direct, match: { port: 18120/tcp }, allow: [good] }
    - { name: custom-down, match: { port: 18122/tcp }, allow: [good] }
    - { name: custom-live, match: { port: 18123/tcp }, allow: [good] }
    - { name: restart, match: { port: 18124/tcp }, allow: [good] }
    - { name: proxy6, match: { port: 18126/tcp }, allow: ["${GOOD6}"] }
network:
  exceptions: [${exceptions.join(', ')}]
`;

async function containerAddress(id: string): Promise<string> {
  const info = await docker.getContainer(id).inspect();
  const address = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress;
  if (!address) throw new Error(`container ${id} has no IPv4 address`);
  return address;
}

/** The LAN host routes the container's address through the Docker host (only inside its namespace). */
function routeVia(client: NetnsClient, address: string): void {
  execFileSync('ip', ['-n', client.name, 'route', 'add', `${address}/32`, 'via', HOST_ADDR]);
}

// Tries a TCP connection from `source` every 20 ms (each given 100 ms) until stdin closes, at most
// 120 s; says "probing" once the first attempt is over, and at the end how many got through of how many.
const PROBER = `
const net = require('node:net');
const [host, port, source] = process.argv.slice(1);
let opened = 0, tried = 0, done = false;
const until = Date.now() + 120000;
process.stdin.on('end', () => { done = true; }).resume();
function after() {
  if (tried === 1) process.stdout.write('probing\\n');
  setTimeout(next, 20);
}
function next() {
  if (done || Date.now() > until) { process.stdout.write(opened + ' ' + tried + '\\n'); return; }
  tried++;
  const socket = net.connect({ host, port: Number(port), localAddress: source });
  const timer = setTimeout(() => { socket.destroy(); after(); }, 100);
  socket.on('connect', () => { opened++; clearTimeout(timer); socket.destroy(); after(); });
  socket.on('error', () => { clearTimeout(timer); after(); });
}
next();
`;

/** Probes continuously from the first attempt (`started`) until `stop()`, which resolves with the connections that got through and those tried. */
function probeContinuously(client: NetnsClient, source: string, host: string, port: number): { started: Promise<void>; stop(): Promise<{ opened: number; tried: number }> } {
  const child = spawn('ip', ['netns', 'exec', client.name, process.execPath, '-e', PROBER, host, String(port), source], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let markStarted: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('probing\n')) markStarted();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    started,
    async stop() {
      child.stdin!.end();
      await exited;
      const [opened, tried] = (out.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
      return { opened: opened ?? NaN, tried: tried ?? NaN };
    },
  };
}

for (const backend of BACKENDS) t.test(`${backend} backend`, async (t) => scenarios(t, backend));

function scenarios(t: Test, backend: Backend): void {
  const daemon = (t: Test, policyText: string, stateDir?: string): DaemonProcess => firewallDaemon(t, backend, policyText, stateDir);
  cleanSlate(t);

  t.test('a LAN host routing to a container address is dropped, unless its network opts in', async (t) => {
    await bridgeNetwork(t, 'dw-ev-open');
    await bridgeNetwork(t, 'dw-ev-routed', { 'com.docker.network.bridge.gateway_mode_ipv4': 'routed' });
    const guarded = await runContainer({ publish: ['18120:80/tcp'] });
    const excepted = await runContainer({ publish: ['18121:80/tcp'], hostConfig: { NetworkMode: 'dw-ev-open' } });
    const routed = await runContainer({ publish: ['18125:80/tcp'], hostConfig: { NetworkMode: 'dw-ev-routed' } });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    const [guardedAddr, exceptedAddr, routedAddr] = await Promise.all([guarded, excepted, routed].map(containerAddress));
    for (const address of [guardedAddr!, exceptedAddr!, routedAddr!]) routeVia(client, address);

    const d = daemon(t, policy('deny', ['dw-ev-open']));
    await d.waitForLog((l) => l.msg === 'reconciled');
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18120), 'the allowed source reaches the published port');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18120), 'another source does not, through the host port');
    t.ok(await reaches(client, OTHER, exceptedAddr!, 80), 'a network in network.exceptions is reachable directly (the route works)');
    t.ok(await reaches(client, OTHER, routedAddr!, 80), 'so is a network in routed mode (gateway_mode_ipv4=routed)');
    t.notOk(await reaches(client, OTHER, guardedAddr!, 80), 'the denied source does not reach the container address directly');
    t.notOk(await reaches(client, GOOD, guardedAddr!, 80), 'nor does the allowed one: only the published port is the way in');

    t.equal(await d.stop(), 0);
    t.notOk(await reaches(client, OTHER, guardedAddr!, 80), 'still dropped while dockwarden is down');
  });

  t.test('a bridge network created with a custom name while the daemon runs is covered at once', async (t) => {
    const bystander = await runContainer({ publish: ['18127:80/tcp'] });
    const d = daemon(t, policy('deny'));
    await d.waitForLog((l) => l.msg === 'reconciled');
    await bridgeNetwork(t, 'dw-ev-live', { 'com.docker.network.bridge.name': 'dwevbr1' });
    const id = await runContainer({ publish: ['18123:80/tcp'], hostConfig: { NetworkMode: 'dw-ev-live' } });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    const address = await containerAddress(id);
    routeVia(client, address);
    await d.waitForLog(judged(id));
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18123), 'the allowed source reaches its port');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18123), 'another source does not');
    // No reconcile runs in between (the periodic one is minutes away): the network event is what covers it.
    await d.waitForLog((l) => l.msg === 'firewall options changed' && JSON.stringify(l.firewall).includes('dwevbr1'), 5_000);
    t.notOk(await reaches(client, OTHER, address, 80), 'nor directly at its address');

    // A running container joining the network gets an address there: its published port's endpoint
    // on it is in the ruleset at once (dockwarden firewall show lists it), no reconcile needed.
    await docker.getNetwork('dw-ev-live').connect({ Container: bystander });
    const joined = (await docker.getContainer(bystander).inspect()).NetworkSettings.Networks['dw-ev-live']?.IPAddress;
    t.ok(joined, 'the bystander has an address on the new network');
    let shown = '';
    for (const until = Date.now() + 5_000; Date.now() < until && !shown.includes(`${joined}`); ) {
      shown = dockwarden(backend, 'firewall', 'show');
      if (!shown.includes(`${joined}`)) await new Promise((r) => setTimeout(r, 100));
    }
    t.match(shown, joined, 'a container connected to the network is judged again at once');
    t.notOk(d.logs.some((l) => l.msg === 'reconciled' && l.reason === 'periodic'), 'no periodic reconcile helped');
  });

  t.test('a bridge network created with a custom name while the daemon is down is closed until judged', async (t) => {
    const stateDir = mkdtempSync(join(tmpdir(), 'dw-ev-state-'));
    const first = daemon(t, policy('deny'), stateDir);
    await first.waitForLog((l) => l.msg === 'reconciled');
    t.equal(await first.stop(), 0);

    await bridgeNetwork(t, 'dw-ev-down', { 'com.docker.network.bridge.name': 'dwevbr0' });
    const id = await runContainer({ publish: ['18122:80/tcp'], hostConfig: { NetworkMode: 'dw-ev-down' } });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    const address = await containerAddress(id);
    routeVia(client, address);
    await new Promise((r) => setTimeout(r, 300)); // let Docker's own rules settle
    t.notOk(await reaches(client, GOOD, HOST_ADDR, 18122), 'fail-closed: not even the allowed source gets in before it is judged');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18122), 'nor any other');
    // iptables cannot tell a bridge by kind, and a connection routed straight to a container address is
    // not DNATed: on an unseen custom name it stays open until the daemon has seen the network (README).
    if (backend === 'nftables') t.notOk(await reaches(client, OTHER, address, 80), 'nor directly at its address');

    const second = daemon(t, policy('deny'), stateDir);
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18122), 'once judged, the allowed source gets in');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18122), 'and only it');
    t.equal(await second.stop(), 0);
  });

  // Docker without IPv6 serves [::] through docker-proxy, on the host's input path, not forwarded: filtered there by host port.
  t.test('after a reboot the baseline closes the docker-proxy (IPv6) path of the ports it knew', async (t) => {
    await runContainer({ publish: ['18126:80/tcp'] });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    addIpv6(client);
    const stateDir = mkdtempSync(join(tmpdir(), 'dw-ev-state-'));
    const first = daemon(t, policy('deny'), stateDir);
    await first.waitForLog((l) => l.msg === 'reconciled');
    t.ok(await eventuallyReaches(client, GOOD6, `[${HOST6}]`, 18126), 'judged: the allowed IPv6 source gets in');
    t.notOk(await reaches(client, OTHER6, `[${HOST6}]`, 18126), 'another does not');
    t.equal(await first.stop(), 0);

    // A reboot: the kernel forgets every rule, the boot unit puts in the baseline before Docker restarts its containers.
    dockwarden(backend, 'firewall', 'remove');
    t.ok(await reaches(client, OTHER6, `[${HOST6}]`, 18126), 'without any ruleset the port is open (the test reaches it)');
    const config = join(stateDir, 'config.yaml');
    writeFileSync(join(stateDir, 'policy.yaml'), policy('deny'));
    writeFileSync(config, `policy:\n  file: ${join(stateDir, 'policy.yaml')}\nstate:\n  dir: ${stateDir}\n`);
    t.match(dockwarden(backend, 'firewall', 'baseline', '--config', config), /baseline installed/);
    t.notOk(await reaches(client, OTHER6, `[${HOST6}]`, 18126), 'the baseline closes it to the denied source');
    t.notOk(await reaches(client, GOOD6, `[${HOST6}]`, 18126), 'and to the allowed one until it is judged');
    t.notOk(await reaches(client, GOOD, HOST_ADDR, 18126), 'as it closes the IPv4 path');
  });

  t.test('a daemon restart under ports.default: allow never opens a restricted port', async (t) => {
    const stateDir = mkdtempSync(join(tmpdir(), 'dw-ev-state-'));
    // The restricted container first, then others: the start-up reconcile judges the newest first,
    // so the restricted one is judged last, after many firewall transactions.
    await runContainer({ publish: ['18124:80/tcp'] });
    for (let i = 0; i < 24; i++) await runContainer({ cmd: ['sleep', '86400'] });
    const client = createClient({ addrs: [GOOD, OTHER], t });
    const first = daemon(t, policy('allow'), stateDir);
    await first.waitForLog((l) => l.msg === 'reconciled');
    t.ok(await eventuallyReaches(client, GOOD, HOST_ADDR, 18124), 'the allowed source reaches the restricted port');
    t.notOk(await reaches(client, OTHER, HOST_ADDR, 18124), 'the denied one does not');

    const probe = probeContinuously(client, OTHER, HOST_ADDR, 18124);
    await probe.started;
    t.equal(await first.stop('SIGKILL'), null, 'the daemon is killed, its ruleset stays');
    const second = daemon(t, policy('allow'), stateDir);
    await second.waitForLog((l) => l.msg === 'reconciled', 60_000);
    const { opened, tried } = await probe.stop();
    t.ok(tried > 1, `the denied source kept trying from before the kill to after the start-up reconcile (${tried} attempts)`);
    t.equal(opened, 0, 'and never got a connection');
    t.ok(await reaches(client, GOOD, HOST_ADDR, 18124), 'the allowed source still gets in');
    t.equal(await second.stop(), 0);
  });
}
