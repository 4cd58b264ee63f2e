/**
 * When `inet dockwarden` existed in a network namespace: a listener of the kernel's nf_tables
 * notifications (the daemon's own addon, dist/) in that namespace records each creation and deletion
 * of the table with its time, so a connection seen at some moment can be told to have come before or
 * after the daemon's repair. Lost notifications are recorded too (`overrun`).
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';

const EVENTS_MODULE = resolve(import.meta.dirname, '../../dist/adapters/nftables/table-events.js');

const LISTENER = `
const { watchTableEvents } = await import(process.argv[1]);
globalThis.keep = watchTableEvents((events) => {
  for (const e of events) if (e.kind !== 'change' || (e.family === 'inet' && e.table === 'dockwarden' && /^(new|del)table$/.test(e.message)))
    process.stdout.write(JSON.stringify({ t: Date.now(), what: e.kind === 'change' ? e.message : e.reason }) + '\\n');
});
process.stdout.write('{"ready":true}\\n');
setInterval(() => {}, 1 << 30);
`;

export interface TableTimeline {
  /** Resolves once the listener listens. */
  readonly ready: Promise<void>;
  /** `newtable`, `deltable` (or a lost notification's reason), with Date.now() when heard. */
  readonly events: ReadonlyArray<{ readonly t: number; readonly what: string }>;
  /** Whether the table existed at `ms` (it did unless the last event before was its deletion). */
  presentAt(ms: number): boolean;
  /** The first deletion at or after `ms`, and the first creation after that (NaN when none). */
  flushAfter(ms: number): { deleted: number; back: number };
  stop(): void;
}

export function tableTimeline(netns: string): TableTimeline {
  const child = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, '--input-type=module', '-e', LISTENER, EVENTS_MODULE], { stdio: ['ignore', 'pipe', 'inherit'] });
  const events: Array<{ t: number; what: string }> = [];
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`table timeline listener exited ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const e = JSON.parse(line) as { ready?: true; t: number; what: string };
      if (e.ready) resolve();
      else events.push(e);
    });
  });
  return {
    ready,
    events,
    presentAt: (ms) => events.filter((e) => e.t <= ms).at(-1)?.what !== 'deltable',
    flushAfter(ms) {
      const deleted = events.find((e) => e.what === 'deltable' && e.t >= ms)?.t ?? NaN;
      return { deleted, back: events.find((e) => e.what === 'newtable' && e.t >= deleted)?.t ?? NaN };
    },
    stop: () => void child.kill('SIGKILL'),
  };
}
