/**
 * A test client with its own address (README "Development"): a network namespace joined to the host by a veth
 * pair, the host end 198.51.100.1/24, the client end one or more addresses in 198.51.100.0/24.
 *
 * Safety: 192.0.2.0/24 is the machine's own network and 203.0.113.0/24 is where the package
 * registries resolve; this helper never configures anything outside 198.51.100.0/24, and it refuses
 * to start when 198.51.100.0/24 is already routed (or assigned) anywhere on the host. So only one
 * client exists at a time: give it several addresses when a test needs several sources.
 */
import { execFile, execFileSync } from 'node:child_process';

export const CLIENT_NET = '198.51.100.0/24';
export const HOST_ADDR = '198.51.100.1';
const PREFIX = '198.51.100.';

export interface ExecResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface NetnsClient {
  /** Name of the network namespace. */
  readonly name: string;
  /** Host end of the veth pair (carries HOST_ADDR/24). */
  readonly hostVeth: string;
  /** Client end, inside the namespace. */
  readonly clientVeth: string;
  readonly hostAddr: string;
  /** The client's addresses; the first is the primary one (its default source). */
  readonly addrs: readonly string[];
  /** Runs `cmd args…` inside the namespace (execFile, no shell). Never rejects on a non-zero exit. */
  exec(cmd: string, args?: readonly string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
  /** Removes the namespace and the veth pair; idempotent. */
  destroy(): Promise<void>;
}

export interface NetnsOptions {
  /** Client addresses, all inside 198.51.100.0/24 and not .0/.1/.255; default ['198.51.100.10']. */
  readonly addrs?: readonly string[];
  /** A tap test (or anything with `teardown`): destroy() is registered on it. */
  readonly t?: { teardown(fn: () => unknown): void };
}

interface Route {
  dst?: string;
  dev?: string;
  gateway?: string;
  type?: string;
  table?: string;
}

function ipJson<T>(args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8' }) || '[]') as T;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function toInt(addr: string): number {
  const p = addr.split('.').map(Number);
  if (p.length !== 4 || p.some((n) => !Number.isInteger(n) || n < 0 || n > 255)) throw new Error(`bad IPv4 address ${addr}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function overlaps(a: string, b: string): boolean {
  const [an, al = '32'] = a.split('/');
  const [bn, bl = '32'] = b.split('/');
  const m = Math.min(Number(al), Number(bl));
  if (m === 0) return true;
  const mask = m === 32 ? 0xffffffff : ~(0xffffffff >>> m) >>> 0;
  return ((toInt(an!) & mask) >>> 0) === ((toInt(bn!) & mask) >>> 0);
}

/** Throws unless nothing on the host routes or owns any part of 198.51.100.0/24. */
export function assertClientNetFree(): void {
  const routes = ipJson<Route[]>(['-4', 'route', 'show', 'table', 'all']);
  for (const r of routes) {
    if (!r.dst || r.dst === 'default') continue;
    if (overlaps(r.dst, CLIENT_NET)) {
      throw new Error(
        `refusing to create a test client: ${CLIENT_NET} is already routed (${r.type ?? 'unicast'} ${r.dst}` +
          `${r.gateway ? ` via ${r.gateway}` : ''}${r.dev ? ` dev ${r.dev}` : ''}${r.table ? ` table ${r.table}` : ''})`,
      );
    }
  }
  // `ip route get` must take the default route, not something more specific (e.g. policy routing)
  const [got] = ipJson<Array<{ dst?: string; dev?: string; gateway?: string }>>(['-4', 'route', 'get', `${PREFIX}10`]);
  const defaults = routes.filter((r) => r.dst === 'default' && (r.table === undefined || r.table === 'main'));
  if (got && !defaults.some((d) => d.dev === got.dev && d.gateway === got.gateway)) {
    throw new Error(`refusing to create a test client: ${PREFIX}10 routes via ${got.gateway ?? '-'} dev ${got.dev ?? '-'}, not the default route`);
  }
}

function checkAddr(addr: string): void {
  if (!addr.startsWith(PREFIX) || !overlaps(addr, CLIENT_NET)) throw new Error(`${addr} is outside ${CLIENT_NET}`);
  const last = Number(addr.slice(PREFIX.length));
  if (last < 2 || last > 254) throw new Error(`${addr}: use a host number 2..254 (.1 is the host end)`);
}

let seq = 0;

function destroySync(name: string, hostVeth: string): void {
  // Deleting the namespace destroys the veth end inside it, which takes its peer with it.
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
  try {
    execFileSync('ip', ['link', 'del', hostVeth], { stdio: 'ignore' });
  } catch {
    /* not there */
  }
}

const cleanups = new Map<string, () => void>();
process.on('exit', () => {
  for (const fn of cleanups.values()) fn();
});

/** Deletes namespaces this helper left behind in processes that no longer exist (`dwt-<pid>-<n>`). */
function reapStale(): void {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const m = /^dwt-(\d+)-([0-9a-z]+)\b/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) destroySync(`dwt-${m[1]}-${m[2]}`, `dwh${pid.toString(36)}x${m[2]}`);
  }
}

/** Creates the client namespace. Throws (creating nothing) if 198.51.100.0/24 is in use. */
export function createClient(opts: NetnsOptions = {}): NetnsClient {
  const addrs = [...(opts.addrs ?? [`${PREFIX}10`])];
  if (addrs.length === 0) throw new Error('at least one client address');
  addrs.forEach(checkAddr);
  reapStale();
  assertClientNetFree();

  const n = (++seq).toString(36);
  const pid36 = process.pid.toString(36);
  const name = `dwt-${process.pid}-${n}`;
  const hostVeth = `dwh${pid36}x${n}`;
  const clientVeth = `dwc${pid36}x${n}`;
  if (hostVeth.length > 15) throw new Error(`interface name ${hostVeth} too long`);

  const cleanup = (): void => destroySync(name, hostVeth);
  cleanups.set(name, cleanup);
  try {
    ip('netns', 'add', name);
    ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', clientVeth);
    ip('link', 'set', clientVeth, 'netns', name);
    ip('addr', 'add', `${HOST_ADDR}/24`, 'dev', hostVeth);
    ip('link', 'set', hostVeth, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    for (const a of addrs) ip('-n', name, 'addr', 'add', `${a}/24`, 'dev', clientVeth);
    ip('-n', name, 'link', 'set', clientVeth, 'up');
    // The first address is the default source; routes out of the namespace go to the host end.
    ip('-n', name, 'route', 'add', 'default', 'via', HOST_ADDR, 'dev', clientVeth, 'src', addrs[0]!);
  } catch (err) {
    cleanup();
    cleanups.delete(name);
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`creating test client ${name} failed${stderr ? `: ${stderr}` : ''}`, { cause: err });
  }

  const client: NetnsClient = {
    name,
    hostVeth,
    clientVeth,
    hostAddr: HOST_ADDR,
    addrs,
    exec(cmd, args = [], { timeoutMs = 30_000, input } = {}) {
      return new Promise((resolve, reject) => {
        const child = execFile(
          'ip',
          ['netns', 'exec', name, cmd, ...args],
          { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 16 << 20 },
          (err, stdout, stderr) => {
            if (err && typeof err.code === 'string') return reject(err); // spawn failure (ENOENT, …)
            resolve({
              code: err ? ((err.code as number | undefined) ?? null) : 0,
              signal: (err?.signal as NodeJS.Signals | undefined) ?? null,
              stdout,
              stderr,
            });
          },
        );
        // The command may exit before reading its input (curl reads none): its exit status says why, so EPIPE adds nothing.
        child.stdin?.on('error', () => {});
        child.stdin?.end(input ?? '');
      });
    },
    async destroy() {
      cleanup();
      cleanups.delete(name);
    },
  };
  opts.t?.teardown(() => client.destroy());
  return client;
}
