/**
 * A real Docker registry (Debian's `docker-registry`, distribution 2.x) on loopback, for tests that
 * need real repo digests. dockerd treats registries on 127.0.0.0/8 as insecure (plain HTTP) by default.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type Docker from 'dockerode';

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry part of references. */
  readonly host: string;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;

/** Starts a registry storing into `dir`; resolves once `GET /v2/` answers 200. */
export async function startRegistry(dir: string): Promise<TestRegistry> {
  const port = await freeLoopbackPort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} } }`,
      `http: { addr: "127.0.0.1:${port}", secret: dw-test-only }`,
      '',
    ].join('\n'),
  );
  // A clean environment: REGISTRY_* variables would override the file.
  const child = spawn('docker-registry', ['serve', config], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject);
    void exited.then(() => reject(new Error(`docker-registry exited during start-up:\n${output.join('')}`)));
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  try {
    await Promise.race([answers(`http://127.0.0.1:${port}/v2/`), failed]);
  } catch (error) {
    await stop();
    throw error;
  }
  failed.catch(() => {}); // it exits when stopped
  return { host: `127.0.0.1:${port}`, stop };
}

async function answers(url: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ok = await fetch(url).then((r) => r.status === 200, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${READY_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

interface ProgressEvent {
  readonly error?: string;
  readonly status?: string;
  readonly aux?: { readonly Digest?: string };
}

/** Pushes `reference` (a local tag) and resolves with the manifest digest the registry answered. */
export async function push(docker: Docker, reference: string): Promise<string> {
  const events = await progress(docker, await docker.getImage(reference).push({ authconfig: {} }), `push ${reference}`); // dockerd wants the header, even empty
  const digest = events.find((e) => e.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`push ${reference}: no digest in the answer`);
  return digest;
}

/** Pulls `reference` from its registry and resolves with the manifest digest dockerd reported. */
export async function pull(docker: Docker, reference: string): Promise<string> {
  const events = await progress(docker, await docker.pull(reference, { authconfig: {} }), `pull ${reference}`);
  const digest = events.map((e) => /^Digest: (\S+)$/.exec(e.status ?? '')?.[1]).find((d) => d !== undefined);
  if (!digest) throw new Error(`pull ${reference}: no digest in the answer`);
  return digest;
}

async function progress(docker: Docker, stream: NodeJS.ReadableStream, what: string): Promise<ProgressEvent[]> {
  const events = await new Promise<ProgressEvent[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: ProgressEvent[]) => (err ? reject(err) : resolve(out))),
  );
  const error = events.find((e) => e.error)?.error;
  if (error) throw new Error(`${what}: ${error}`);
  return events;
}
