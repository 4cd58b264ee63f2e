import { createSocket as createUdpSocket, type Socket as UdpSocket } from 'node:dgram';
import { createRequire } from 'node:module';
import { connect, isIPv6, type Socket } from 'node:net';
import { octetCounted } from '../../domain/alerts/syslog-format.js';
import type { SyslogTarget } from '../../domain/alerts/syslog-target.js';

/** Sends one already formatted syslog record; rejects when it could not be handed to the network. */
export interface SyslogTransport {
  send(record: Buffer): Promise<void>;
  close(): void;
}

export function createSyslogTransport(target: SyslogTarget, timeoutMs: number): SyslogTransport {
  switch (target.transport) {
    case 'udp':
      return udpTransport(target.host, target.port);
    case 'tcp':
      return tcpTransport(target.host, target.port, timeoutMs);
    case 'unix':
      return unixTransport(target.path);
  }
}

/** RFC 5426: one record per datagram. */
function udpTransport(host: string, port: number): SyslogTransport {
  let socket: UdpSocket | null = null;
  return {
    send(record) {
      socket ??= createUdpSocket(isIPv6(host) ? 'udp6' : 'udp4').unref();
      const s = socket;
      return new Promise((resolve, reject) => s.send(record, port, host, (error) => (error ? reject(error) : resolve())));
    },
    close() {
      socket?.close();
      socket = null;
    },
  };
}

/**
 * RFC 6587 octet counting over one long-lived connection. A broken connection is dropped and the
 * next send opens a new one, so the sink's retry loop is also the reconnect loop.
 */
function tcpTransport(host: string, port: number, timeoutMs: number): SyslogTransport {
  let socket: Socket | null = null;
  let connected: Promise<Socket> | null = null;
  const drop = (s: Socket): void => {
    s.destroy();
    if (socket === s) {
      socket = null;
      connected = null;
    }
  };
  const open = (): Promise<Socket> =>
    (connected ??= new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port, timeout: timeoutMs });
      socket = s;
      s.once('connect', () => {
        s.setTimeout(0);
        s.setKeepAlive(true);
        s.unref();
        resolve(s);
      });
      s.once('timeout', () => s.destroy(new Error(`syslog connect timed out after ${timeoutMs} ms`)));
      s.on('error', (error) => (drop(s), reject(error)));
      s.once('close', () => drop(s));
      // A receiver sends nothing back; reading keeps a half-closed connection from going unnoticed.
      s.on('data', () => {});
      s.on('end', () => drop(s));
    }));
  return {
    async send(record) {
      const s = await open();
      const framed = octetCounted(record);
      await new Promise<void>((resolve, reject) => s.write(framed, (error) => (error ? (drop(s), reject(error)) : resolve())));
    },
    close() {
      if (socket) drop(socket);
    },
  };
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (error?: Error) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  close(): void;
}

/** The local syslog socket: AF_UNIX datagrams (Node has none, hence `unix-dgram`, as for sd_notify). */
function unixTransport(path: string): SyslogTransport {
  let socket: UnixDgramSocket | null = null;
  return {
    send(record) {
      if (!socket) {
        socket = (createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket }).createSocket('unix_dgram');
        socket.on('error', () => {}); // every send reports its own error
      }
      const s = socket;
      return new Promise((resolve, reject) => s.send(record, 0, record.length, path, (error) => (error ? reject(error) : resolve())));
    },
    close() {
      socket?.close();
      socket = null;
    },
  };
}
