import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface BoundSocket {
  on(event: 'message', listener: (buf: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  bind(path: string): void;
  close(): void;
}

/**
 * A real AF_UNIX datagram socket standing in for systemd's notify socket: what a test hands a
 * daemon as NOTIFY_SOCKET. Collects every message as `KEY=value` lines.
 */
export function bindNotifySocket(): { path: string; messages: string[][]; next(match: (fields: string[]) => boolean, timeoutMs?: number): Promise<string[]>; close(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dw-notify-'));
  const path = join(dir, 'notify.sock');
  const { createSocket } = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): BoundSocket };
  const socket = createSocket('unix_dgram');
  const messages: string[][] = [];
  const waiters: Array<{ match: (fields: string[]) => boolean; resolve: (fields: string[]) => void }> = [];
  socket.on('message', (buf) => {
    const fields = buf.toString('utf8').split('\n').filter(Boolean);
    messages.push(fields);
    for (const w of waiters.filter((w) => w.match(fields))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(fields);
    }
  });
  socket.bind(path);
  return {
    path,
    messages,
    next(match, timeoutMs = 30_000) {
      const seen = messages.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching notify message in ${timeoutMs} ms; got ${JSON.stringify(messages)}`)), timeoutMs);
        waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)) });
      });
    },
    close() {
      socket.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
