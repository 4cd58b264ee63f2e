import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  readonly id: string;
  readonly timestamp: number;
  readonly body: string;
  readonly json: unknown;
  /** Wall-clock ms (performance.timeOrigin + performance.now()) when the request had been read. */
  readonly receivedAt: number;
}

/**
 * A real HTTP receiver on 127.0.0.1 that checks every request the Standard Webhooks way, with its own
 * HMAC (not dockwarden's code), answers 204 to good ones and 401 to bad ones, and records deliveries
 * by id (at-least-once: repeats are counted, not stored twice). `down()` closes the port for real.
 */
export class WebhookReceiver {
  readonly deliveries = new Map<string, Delivery>();
  readonly rejected: string[] = [];
  requests = 0;
  repeats = 0;
  /** Answer this status instead of 204 (an endpoint that is up but failing). */
  failWith: number | null = null;
  private server: Server | null = null;
  private port = 0;
  private waiters: Array<{ test: () => boolean; resolve: () => void }> = [];

  constructor(private readonly key: Buffer | null) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async up(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const receivedAt = performance.timeOrigin + performance.now();
        const body = Buffer.concat(chunks).toString('utf8');
        const problem = this.check(req.headers, body);
        if (problem) {
          this.rejected.push(problem);
          res.writeHead(401).end();
        } else if (this.failWith !== null) {
          res.writeHead(this.failWith).end();
        } else {
          const id = String(req.headers['webhook-id']);
          if (this.deliveries.has(id)) this.repeats++;
          else this.deliveries.set(id, { id, timestamp: Number(req.headers['webhook-timestamp']), body, json: JSON.parse(body), receivedAt });
          res.writeHead(204).end();
        }
        this.notify();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  /** Resolves once `test` holds (checked after every request); rejects after `timeoutMs`. */
  until(test: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver: condition not met in ${timeoutMs} ms (${this.deliveries.size} delivered, ${this.requests} requests, rejected ${JSON.stringify(this.rejected.slice(-3))})`)), timeoutMs);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) if (w.test()) this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve();
  }

  private check(headers: Record<string, string | string[] | undefined>, body: string): string | null {
    if (headers['content-type'] !== 'application/json') return `content-type ${String(headers['content-type'])}`;
    const id = headers['webhook-id'];
    if (typeof id !== 'string' || id === '') return 'no webhook-id';
    try {
      JSON.parse(body);
    } catch {
      return 'body is not JSON';
    }
    if (!this.key) return null;
    const timestamp = headers['webhook-timestamp'];
    const signature = headers['webhook-signature'];
    if (typeof timestamp !== 'string' || !/^\d+$/.test(timestamp)) return 'no webhook-timestamp';
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return 'timestamp outside tolerance';
    if (typeof signature !== 'string') return 'no webhook-signature';
    const expected = createHmac('sha256', this.key).update(`${id}.${timestamp}.${body}`).digest();
    // A header may list several space-separated signatures; one valid v1 is enough.
    const ok = signature.split(' ').some((s) => {
      const [version, value] = s.split(',');
      const got = Buffer.from(value ?? '', 'base64');
      return version === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
    });
    return ok ? null : 'bad signature';
  }
}
