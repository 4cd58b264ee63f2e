import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

/**
 * JSON lines on stdout, for journald. Untrusted values (container names, labels, image references)
 * are only ever passed as fields under fixed keys, never spliced into the message text.
 */
export function createLogger(level: LogLevel, destination: DestinationStream = process.stdout): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/**
 * The daemon's log lines, held until the event loop's next turn and written then in one go: a start-up
 * reconcile logs a line per container, and a write(2) each to journald's socket (or a pipe) took ~0.2 ms
 * of the event loop apiece, ~8 % of it at 1,000 containers (profile). A line waits at most for the turn
 * it was logged in to end; what is held when the process exits (`process.exit`, an uncaught exception)
 * is written by an 'exit' handler, as writes to pipes, files and terminals are synchronous there.
 * Only a process killed outright (SIGKILL) loses the lines of the turn it was killed in.
 */
export function batchedDestination(out: NodeJS.WritableStream): DestinationStream & { flush(done?: () => void): void } {
  let held: string[] = [];
  const flush = (done?: () => void): void => {
    if (held.length > 0) {
      const text = held.join('');
      held = [];
      out.write(text);
    }
    done?.();
  };
  process.on('exit', () => flush());
  return {
    write(line: string) {
      if (held.length === 0) setImmediate(flush);
      held.push(line);
    },
    flush,
  };
}

export type { Logger };
