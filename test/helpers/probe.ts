import { spawn, type ChildProcess } from 'node:child_process';
import type { NetnsClient } from './netns.js';

/** One HTTP GET from `source` inside the client namespace; true when the server answered 200. */
export async function reaches(client: NetnsClient, source: string, host: string, port: number): Promise<boolean> {
  const r = await client.exec('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--connect-timeout', '1', '--max-time', '2', '--interface', source, `http://${host}:${port}/`], { timeoutMs: 5_000 });
  return r.code === 0 && r.stdout === '200';
}

/** Polls until `source` reaches the port (the firewall has caught up); false after `timeoutMs`. */
export async function eventuallyReaches(client: NetnsClient, source: string, host: string, port: number, timeoutMs = 10_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await reaches(client, source, host, port)) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

// Connects from a source address to an echo server, sends a line every 100 ms, prints what comes
// back; exits 4 when 1.5 s pass without an echo (the connection was cut), 3 when it cannot connect.
const HOLDER = `
const net = require('node:net');
const [host, port, source] = process.argv.slice(1);
const socket = net.connect({ host, port: Number(port), localAddress: source });
let last = Date.now();
socket.setTimeout(3000, () => process.exit(3));
socket.on('connect', () => {
  socket.setTimeout(0);
  process.stdout.write('connected\\n');
  setInterval(() => { socket.write('ping\\n'); if (Date.now() - last > 1500) process.exit(4); }, 100);
});
socket.on('data', (d) => { last = Date.now(); process.stdout.write(d); });
socket.on('error', () => process.exit(3));
`;

/** A long-lived connection held open from inside the namespace; `exited` resolves with its code. */
export function holdConnection(client: NetnsClient, source: string, host: string, port: number): { child: ChildProcess; connected: Promise<void>; exited: Promise<number | null> } {
  const child = spawn('ip', ['netns', 'exec', client.name, process.execPath, '-e', HOLDER, host, String(port), source], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const connected = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ping')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`connection holder exited ${code} before an echo: ${out}`)));
  });
  connected.catch(() => {}); // callers that only await `exited` need not observe it
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, connected, exited };
}
