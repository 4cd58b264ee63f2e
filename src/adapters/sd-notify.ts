import { createRequire } from 'node:module';

/**
 * The systemd notification protocol (sd_notify(3)): newline-separated `KEY=value` datagrams to the
 * unix socket named by NOTIFY_SOCKET. Node has no AF_UNIX datagram sockets, hence `unix-dgram`.
 * Abstract-namespace sockets (`@…`) are not supported by that binding; systemd hands services a path.
 */
export interface Notifier {
  /** Whether a service manager is listening at all. */
  readonly enabled: boolean;
  /** Watchdog interval the manager asked for, or null when the watchdog is off or meant for another pid. */
  readonly watchdogMs: number | null;
  ready(status: string): void;
  status(status: string): void;
  watchdog(): void;
  stopping(status: string): void;
  /** Releases the socket so it does not hold the event loop open. */
  close(): void;
}

interface DgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, callback: (error?: Error) => void): void;
  close(): void;
}

const require = createRequire(import.meta.url);

export function createNotifier(env: NodeJS.ProcessEnv, onError: (error: Error) => void): Notifier {
  const path = env.NOTIFY_SOCKET ?? '';
  const usable = path.startsWith('/');
  if (path !== '' && !usable) onError(new Error(`NOTIFY_SOCKET ${JSON.stringify(path)} is not a filesystem path; notifications are off`));
  const socket: DgramSocket | null = usable
    ? (require('unix-dgram') as { createSocket(type: 'unix_dgram'): DgramSocket }).createSocket('unix_dgram')
    : null;

  const send = (message: string): void => {
    if (!socket) return;
    const buf = Buffer.from(message);
    socket.send(buf, 0, buf.length, path, (error) => {
      if (error) onError(error);
    });
  };
  // One line per field: a newline in a status would start a new, forged, field.
  const oneLine = (text: string): string => text.replace(/[\r\n]+/g, ' ');

  return {
    enabled: socket !== null,
    watchdogMs: socket ? watchdogInterval(env) : null,
    ready: (status) => send(`READY=1\nSTATUS=${oneLine(status)}\nMAINPID=${process.pid}`),
    status: (status) => send(`STATUS=${oneLine(status)}`),
    watchdog: () => send('WATCHDOG=1'),
    stopping: (status) => send(`STOPPING=1\nSTATUS=${oneLine(status)}`),
    close: () => socket?.close(),
  };
}

/** WATCHDOG_USEC in ms when WATCHDOG_PID is unset or ours (sd_watchdog_enabled(3)). */
export function watchdogInterval(env: NodeJS.ProcessEnv): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return Math.max(1, Math.floor(usec / 1000));
}
