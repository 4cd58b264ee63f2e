/**
 * A tiny packet lab for the firewall tests: a greeting echo server and a client, run inside network
 * namespaces with `ip netns exec` (argument arrays, no shell).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Test } from 'tap';

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
