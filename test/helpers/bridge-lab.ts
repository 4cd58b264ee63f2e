/**
 * The bridge isolation lab: runs test/helpers/spoof.py inside a container's network namespace
 * (`nsenter --net=/proc/PID/ns/net`, argument arrays, no shell) and reads the neighbour tables the
 * attacks aim at. Containers come from the private test dockerd.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Test } from 'tap';
import { docker } from './docker.js';

const SPOOF = resolve(import.meta.dirname, 'spoof.py');

/** A container's attachment to one network, as its neighbours see it. */
export interface Peer {
  readonly id: string;
  readonly pid: number;
  readonly ip: string;
  /** Empty unless the network has IPv6. */
  readonly ip6: string;
  readonly mac: string;
}

export async function peer(id: string, network: string): Promise<Peer> {
  const inspect = await docker.getContainer(id).inspect();
  const net = inspect.NetworkSettings.Networks[network];
  if (!net) throw new Error(`container ${id} is not on ${network}`);
  return { id, pid: inspect.State.Pid, ip: net.IPAddress, ip6: net.GlobalIPv6Address, mac: net.MacAddress };
}

/** `spoof.py ARGS` inside `pid`'s network namespace, or on the host when `pid` is null. */
export function spoof(pid: number | null, ...args: string[]): Promise<string> {
  const [file, argv] = command(pid, args);
  return new Promise((resolvePromise, reject) => {
    execFile(file, argv, { encoding: 'utf8', timeout: 15_000 }, (error, stdout, stderr) => (error ? reject(new Error(`spoof.py ${args[0]}: ${stderr || error.message}`)) : resolvePromise(stdout)));
  });
}

function command(pid: number | null, args: readonly string[]): [string, string[]] {
  return pid === null ? ['python3', [SPOOF, ...args]] : ['nsenter', [`--net=/proc/${pid}/ns/net`, 'python3', SPOOF, ...args]];
}

/**
 * Listens for UDP datagrams on ip:port (inside `pid`'s netns, or the host's). Resolves once listening
 * with `collect`: call it after the last send; it gives in-flight datagrams `GRACE_MS` and returns
 * `SRC_IP TEXT` per datagram that arrived. The window follows the test's sends, not a fixed clock: on a loaded machine the sends
 * themselves can take seconds. `BACKSTOP_SECONDS` only bounds a listener nobody collects.
 */
export function listen(t: Test, pid: number | null, ip: string, port: number): Promise<() => Promise<string[]>> {
  return collector(t, pid, ['listen', ip, String(port), String(BACKSTOP_SECONDS)]);
}

/** Like `listen`, for every frame `iface` receives (any protocol) holding `marker`: `ETHERTYPE MARKER` per frame. */
export function sniff(t: Test, pid: number, iface: string, marker: string): Promise<() => Promise<string[]>> {
  return collector(t, pid, ['sniff', iface, marker, String(BACKSTOP_SECONDS)]);
}

function collector(t: Test, pid: number | null, args: readonly string[]): Promise<() => Promise<string[]>> {
  const [file, argv] = command(pid, args);
  const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void child.kill('SIGKILL'));
  let out = '';
  const ended = new Promise<string[]>((done) => child.on('exit', () => done(out.split('\n').filter((l) => l !== '' && l !== 'listening'))));
  const collect = (): Promise<string[]> => {
    setTimeout(() => child.kill('SIGTERM'), GRACE_MS);
    return ended;
  };
  return new Promise((ready, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('listening\n')) ready(collect);
    });
    child.on('exit', (code) => reject(new Error(`${args[0]} exited ${code} before it listened`)));
  });
}

const GRACE_MS = 500;
const BACKSTOP_SECONDS = 60;

interface Neighbour {
  readonly dst?: string;
  readonly lladdr?: string;
}

/** The MAC `ip neigh` holds for `ip` on `dev` (host, or inside `pid`'s namespace); null when none. */
export function neighbour(pid: number | null, dev: string, ip: string): string | null {
  const args = ['-j', 'neigh', 'show', 'dev', dev, 'to', ip];
  const stdout = pid === null ? execFileSync('ip', args, { encoding: 'utf8' }) : execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', ...args], { encoding: 'utf8' });
  const entries = JSON.parse(stdout || '[]') as Neighbour[];
  return entries.find((e) => e.dst === ip)?.lladdr ?? null;
}

export function interfaceMac(dev: string): string {
  const [link] = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'dev', dev], { encoding: 'utf8' })) as Array<{ address: string }>;
  return link!.address;
}

/** The host-side bridge interface of a Docker network. */
export async function bridgeOf(network: string): Promise<{ readonly dev: string; readonly gateway: string }> {
  const inspect = await docker.getNetwork(network).inspect() as { Id: string; Options?: Record<string, string>; IPAM: { Config: Array<{ Gateway?: string }> } };
  const dev = inspect.Options?.['com.docker.network.bridge.name'] ?? `br-${inspect.Id.slice(0, 12)}`;
  const gateway = inspect.IPAM.Config.find((c) => c.Gateway && !c.Gateway.includes(':'))?.Gateway;
  if (!gateway) throw new Error(`network ${network} has no IPv4 gateway`);
  return { dev, gateway };
}

/** The host end of a container's eth0: the host link its peer index names, as `ip` inside its namespace reports it. */
export function hostVeth(pid: number): string {
  const [eth0] = JSON.parse(execFileSync('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ link_index: number }>;
  const hostLinks = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifindex: number; ifname: string }>;
  const veth = hostLinks.find((l) => l.ifindex === eth0?.link_index);
  if (!veth) throw new Error(`no host link is the peer of eth0 in the namespace of ${pid}`);
  return veth.ifname;
}
