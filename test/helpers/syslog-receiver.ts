import { createSocket as createUdpSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One RFC 5424 record, parsed strictly: a record that does not parse throws. */
export interface Syslog5424 {
  readonly pri: number;
  readonly timestamp: string;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  /** SD-ID → params, values unescaped. */
  readonly sd: ReadonlyMap<string, Readonly<Record<string, string>>>;
  readonly msg: string;
  readonly bom: boolean;
}

const PRINTUSASCII = /^[\x21-\x7e]+$/;
const SD_NAME = /^[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}$/; // PRINTUSASCII minus = ] " and SP

/** The RFC 5424 ABNF, by hand: header fields, then SD-ELEMENTs with escaped PARAM-VALUEs, then MSG. */
export function parse5424(record: Buffer): Syslog5424 {
  const text = record.toString('latin1'); // byte-exact positions; MSG and values are decoded as UTF-8 below
  const head = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(text);
  if (!head) throw new Error(`not an RFC 5424 header: ${JSON.stringify(text.slice(0, 80))}`);
  const [, pri, timestamp, hostname, appName, procId, msgId] = head;
  for (const [field, max] of [[hostname!, 255], [appName!, 48], [procId!, 128], [msgId!, 32]] as const) {
    if (!PRINTUSASCII.test(field) || field.length > max) throw new Error(`header field ${JSON.stringify(field)} is not PRINTUSASCII{1,${max}}`);
  }
  let i = head[0].length;
  const sd = new Map<string, Record<string, string>>();
  if (text[i] === '-') i++;
  else {
    while (text[i] === '[') {
      const id = /^\[([^ \]"=]+)/.exec(text.slice(i));
      if (!id || !SD_NAME.test(id[1]!)) throw new Error(`bad SD-ID at ${i}`);
      if (sd.has(id[1]!)) throw new Error(`SD-ID ${id[1]} twice`);
      i += id[0].length;
      const params: Record<string, string> = {};
      while (text[i] === ' ') {
        const name = /^ ([^ \]"=]+)="/.exec(text.slice(i));
        if (!name || !SD_NAME.test(name[1]!)) throw new Error(`bad SD-PARAM at ${i}`);
        i += name[0].length;
        const bytes: number[] = [];
        for (;;) {
          const c = text.charCodeAt(i);
          if (Number.isNaN(c)) throw new Error('unterminated PARAM-VALUE');
          if (c === 0x5c && ['"', '\\', ']'].includes(text[i + 1]!)) (bytes.push(text.charCodeAt(i + 1)), (i += 2));
          else if (c === 0x22) break;
          else if (c === 0x5d) throw new Error(`unescaped ] in PARAM-VALUE at ${i}`);
          else (bytes.push(c), i++);
        }
        i++; // closing quote
        params[name[1]!] = Buffer.from(bytes).toString('utf8');
      }
      if (text[i] !== ']') throw new Error(`SD-ELEMENT not closed at ${i}`);
      i++;
      sd.set(id[1]!, params);
    }
    if (sd.size === 0) throw new Error('no STRUCTURED-DATA');
  }
  let rest = record.subarray(i);
  if (rest.length > 0) {
    if (rest[0] !== 0x20) throw new Error('no SP before MSG');
    rest = rest.subarray(1);
  }
  const bom = rest[0] === 0xef && rest[1] === 0xbb && rest[2] === 0xbf;
  const msgBytes = bom ? rest.subarray(3) : rest;
  const msg = new TextDecoder('utf-8', { fatal: bom }).decode(msgBytes);
  return { pri: Number(pri), timestamp: timestamp!, hostname: hostname!, appName: appName!, procId: procId!, msgId: msgId!, sd, msg, bom };
}

/** Splits an RFC 6587 octet-counted stream; throws on anything else (a record must never be newline-framed). */
export class OctetCountingSplitter {
  private buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      const space = this.buffer.indexOf(0x20);
      if (space < 0) return out;
      const len = this.buffer.subarray(0, space).toString('ascii');
      if (!/^[1-9]\d*$/.test(len)) throw new Error(`bad MSG-LEN ${JSON.stringify(len)}`);
      const end = space + 1 + Number(len);
      if (this.buffer.length < end) return out;
      out.push(this.buffer.subarray(space + 1, end));
      this.buffer = this.buffer.subarray(end);
    }
  }
}

interface UnixDgram {
  on(event: 'message', listener: (buf: Buffer) => void): void;
  bind(path: string): void;
  close(): void;
}

/**
 * Real syslog receivers on loopback / a scratch directory: UDP (a record per datagram), TCP (octet
 * counting) and a unix datagram socket standing in for /dev/log. Collects raw records.
 */
export class SyslogReceiver {
  readonly records: Buffer[] = [];
  readonly errors: string[] = [];
  private waiters: Array<{ test: () => boolean; resolve: () => void }> = [];
  private closers: Array<() => void> = [];
  private tcpServer: Server | null = null;
  private tcpPort = 0;
  readonly connections = new Set<Socket>();

  async udp(): Promise<string> {
    const socket = createUdpSocket('udp4');
    socket.on('message', (buf) => this.add(buf));
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    this.closers.push(() => socket.close());
    return `udp://127.0.0.1:${socket.address().port}`;
  }

  /** Listens (again, on the same port after `tcpDown`). */
  async tcp(): Promise<string> {
    const server = createServer((conn) => {
      this.connections.add(conn);
      conn.on('close', () => this.connections.delete(conn));
      const splitter = new OctetCountingSplitter();
      conn.on('data', (chunk: Buffer) => {
        try {
          for (const record of splitter.push(chunk)) this.add(record);
        } catch (error) {
          this.errors.push((error as Error).message);
          conn.destroy();
        }
      });
      conn.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(this.tcpPort, '127.0.0.1', resolve));
    this.tcpPort = (server.address() as AddressInfo).port;
    this.tcpServer = server;
    return `tcp://127.0.0.1:${this.tcpPort}`;
  }

  /** Closes the listener and every connection: the receiver is gone until `tcp()` again. */
  async tcpDown(): Promise<void> {
    const server = this.tcpServer;
    this.tcpServer = null;
    for (const c of this.connections) c.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  unix(): string {
    const dir = mkdtempSync(join(tmpdir(), 'dw-devlog-'));
    const path = join(dir, 'log');
    const socket = (createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgram }).createSocket('unix_dgram');
    socket.on('message', (buf) => this.add(buf));
    socket.bind(path);
    this.closers.push(() => (socket.close(), rmSync(dir, { recursive: true, force: true })));
    return `unix:${path}`;
  }

  until(test: () => boolean, timeoutMs = 30_000): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`syslog receiver: condition not met in ${timeoutMs} ms (${this.records.length} records; errors ${JSON.stringify(this.errors)})`)), timeoutMs);
      this.waiters.push({ test, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async close(): Promise<void> {
    await this.tcpDown();
    for (const close of this.closers.splice(0)) close();
  }

  private add(record: Buffer): void {
    this.records.push(record);
    for (const w of [...this.waiters]) if (w.test()) this.waiters.splice(this.waiters.indexOf(w), 1), w.resolve();
  }
}
