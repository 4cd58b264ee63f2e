/**
 * A tiny packet lab for the firewall tests: a greeting echo server and a client, run inside network
 * namespaces with `ip netns exec` (argument arrays, no shell).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';

/** A fresh network namespace named `<prefix>-<random><suffix>`, deleted with the test. */
export function netns(t: Test, prefix: string, suffix = ''): string {
  const name = `${prefix}-${randomBytes(4).toString('hex')}${suffix}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.teardown(() => execFileSync('ip', ['netns', 'del', name]));
  return name;
}

/**
 * client 198.51.100.10 and .11 ── server .1 ; server "br-dwtest" .129 ── container A .130 ;
 * server "docker0" .193 ── container B .194. The server forwards; the caller adds its ruleset and a
 * Docker-like DNAT. Only 198.51.100.0/24, only inside namespaces.
 */
export function packetTopology(t: Test, prefix: string): { server: string; client: string; ctrA: string; ctrB: string } {
  const server = netns(t, prefix, '-s');
  const client = netns(t, prefix, '-c');
  const ctrA = netns(t, prefix, '-a');
  const ctrB = netns(t, prefix, '-b');
  const ip = (...args: string[]) => execFileSync('ip', args);
  ip('-n', server, 'link', 'add', 'cli0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', client);
  ip('-n', server, 'link', 'add', 'br-dwtest', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctrA);
  ip('-n', server, 'link', 'add', 'docker0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ctrB);
  for (const [ns, dev, addr] of [
    [server, 'cli0', '198.51.100.1/25'], [server, 'br-dwtest', '198.51.100.129/26'], [server, 'docker0', '198.51.100.193/26'],
    [client, 'eth0', '198.51.100.10/25'], [client, 'eth0', '198.51.100.11/25'],
    [ctrA, 'eth0', '198.51.100.130/26'], [ctrB, 'eth0', '198.51.100.194/26'],
  ] as const) ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
  for (const [ns, devs] of [[server, ['lo', 'cli0', 'br-dwtest', 'docker0']], [client, ['lo', 'eth0']], [ctrA, ['lo', 'eth0']], [ctrB, ['lo', 'eth0']]] as const) {
    for (const dev of devs) ip('-n', ns, 'link', 'set', dev, 'up');
  }
  ip('-n', ctrA, 'route', 'add', 'default', 'via', '198.51.100.129');
  ip('-n', ctrB, 'route', 'add', 'default', 'via', '198.51.100.193');
  execFileSync('ip', ['netns', 'exec', server, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return { server, client, ctrA, ctrB };
}

export const SERVER_JS = `
require('net').createServer((s) => { s.on('error', () => {}); s.write('hello ' + s.remoteAddress + '\\n'); s.pipe(s); })
  .listen(Number(process.argv[2]), process.argv[1], () => console.log('listening'));
`;

// probe: print the greeting and exit 0; hold: then wait for "go" on stdin, send a line, exit 0 if echoed, 4 if not.
export const CLIENT_JS = `
const [host, port, localAddress, mode] = process.argv.slice(1);
const s = require('net').connect({ host, port: Number(port), localAddress });
let got = '';
s.on('error', (e) => { console.error(e.message); process.exit(2); });
s.on('data', (d) => {
  got += d;
  if (mode === 'probe' && got.includes('\\n')) { process.stdout.write(got); process.exit(0); }
  if (mode === 'hold' && got === 'hello ' + localAddress + '\\n') { console.log('connected'); }
  if (mode === 'hold' && got.endsWith('ping\\n')) process.exit(0);
});
process.stdin.on('data', () => { s.write('ping\\n'); setTimeout(() => process.exit(4), 1500); });
setTimeout(() => { console.error('timeout'); process.exit(3); }, mode === 'probe' ? 1000 : 10000);
`;

/** Starts a node script in a namespace; resolves once it says `listening` or `connected`. */
export function startIn(t: Test, name: string, args: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', name, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => (d.toString().includes('listening') || d.toString().includes('connected')) && resolve(child));
    child.on('exit', (code) => reject(new Error(`exited ${code} before it was ready`)));
  });
}

/** Whether `from` (inside namespace `client`) gets the server's greeting on 198.51.100.1:`port`. */
export async function connects(client: string, from: string, port: number): Promise<boolean> {
  const child = spawn('ip', ['netns', 'exec', client, process.execPath, '-e', CLIENT_JS, '198.51.100.1', String(port), from, 'probe'],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return code === 0 && out === `hello ${from}\n`;
}
