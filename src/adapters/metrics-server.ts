import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';

/** Where metrics are served: a unix socket (the default: no TCP port unless asked for), a TCP address, or nowhere. */
export type MetricsListen = { readonly kind: 'off' } | { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** `off`, `unix:/run/dockwarden/metrics.sock`, `tcp://127.0.0.1:9464`, `tcp://[::1]:9464`; undefined when not one of them. */
export function parseMetricsListen(text: string): MetricsListen | undefined {
  if (text === 'off') return { kind: 'off' };
  if (text.startsWith('unix:/') && !text.includes('\0')) return { kind: 'unix', path: text.slice('unix:'.length) };
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(text);
  const port = Number(tcp?.[2]);
  if (!tcp || port < 1 || port > 65535) return undefined;
  return { kind: 'tcp', host: tcp[1]!.replace(/^\[|\]$/g, ''), port };
}

/** The metrics' text, written at each scrape, and its content type. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Serves `GET /metrics` in the Prometheus text format; resolves once listening (null when off). */
export async function serveMetrics(listen: MetricsListen, registry: MetricsSource): Promise<Server | null> {
  if (listen.kind === 'off') return null;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${String(error)}\n`),
    );
  });
  if (listen.kind === 'unix') {
    mkdirSync(dirname(listen.path), { recursive: true, mode: 0o755 }); // systemd's RuntimeDirectory= makes it; a shell start may not
    await removeStaleSocket(listen.path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (listen.kind === 'unix') server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  return server;
}

/**
 * A socket left by a daemon that was killed is removed; one that still answers belongs to a running
 * daemon, and anything else at that path is not ours to delete: both are errors.
 */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!lstatSync(path).isSocket()) throw new Error(`${path} exists and is not a socket`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path, () => (probe.destroy(), resolve(true)));
    probe.once('error', () => resolve(false));
  });
  if (answered) throw new Error(`${path} is in use by another process`);
  unlinkSync(path);
}
