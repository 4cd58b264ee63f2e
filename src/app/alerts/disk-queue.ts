import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Alert } from '../../domain/alerts/alert.js';

const RECORD = /^(\d{16})\.json$/;

/**
 * One sink's undelivered alerts, one file per record in `dir`, oldest first. A record is on disk
 * (written to a temporary name, fsynced, renamed, directory fsynced) before `push` returns, so it
 * survives a crash, and it leaves only once delivered. Bounded: a push beyond `limit` drops the
 * oldest and says how many, for the caller to report. Memory holds only each record's file and id:
 * a receiver down for a day must not make the daemon hold a day of alerts; the oldest record is
 * read back from disk when it is its turn.
 */
export class DiskQueue {
  private readonly entries: Array<{ readonly file: string; readonly id: string }> = [];
  private nextSeq = 0;
  private unreadable = 0;

  constructor(
    private readonly dir: string,
    private readonly limit: number,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir).sort()) {
      const seq = RECORD.exec(name)?.[1];
      const file = join(dir, name);
      if (seq === undefined) {
        if (name.endsWith('.tmp')) unlinkSync(file); // a write that never completed, never acknowledged
        continue;
      }
      const alert = readRecord(file);
      if (alert === null) {
        unlinkSync(file);
        this.unreadable++;
      } else {
        this.entries.push({ file, id: alert.id });
      }
      this.nextSeq = Number(seq) + 1;
    }
  }

  /**
   * Records found unreadable (hand edits, a full disk in an earlier run, a file removed by hand)
   * since the last call; they are deleted, and the caller reports them as dropped.
   */
  takeUnreadable(): number {
    const count = this.unreadable;
    this.unreadable = 0;
    return count;
  }

  get size(): number {
    return this.entries.length;
  }

  /** How many records a push now would drop. */
  get overflowOnPush(): number {
    return Math.max(0, this.entries.length + 1 - this.limit);
  }

  /** The oldest record, read from disk; unreadable ones on the way are deleted and counted. */
  oldest(): Alert | undefined {
    for (let entry = this.entries[0]; entry !== undefined; entry = this.entries[0]) {
      const alert = readRecord(entry.file);
      if (alert !== null && alert.id === entry.id) return alert;
      this.entries.shift();
      rmSync(entry.file, { force: true });
      this.unreadable++;
    }
    return undefined;
  }

  /** Appends durably; returns how many of the oldest records were dropped to stay within the limit. */
  push(alert: Alert): number {
    const dropped = this.overflowOnPush;
    for (const { file } of this.entries.splice(0, dropped)) unlinkSync(file);
    const file = join(this.dir, `${String(this.nextSeq++).padStart(16, '0')}.json`);
    const tmp = `${file}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeFileSync(fd, JSON.stringify(alert));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    this.syncDir();
    this.entries.push({ file, id: alert.id });
    return dropped;
  }

  /** Removes a delivered record (by id: it may have been dropped meanwhile). */
  remove(id: string): void {
    const index = this.entries.findIndex((e) => e.id === id);
    if (index < 0) return;
    const [entry] = this.entries.splice(index, 1);
    rmSync(entry!.file, { force: true });
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function readRecord(file: string): Alert | null {
  try {
    const record = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof record === 'object' && record !== null && typeof (record as { id?: unknown }).id === 'string' ? (record as Alert) : null;
  } catch {
    return null;
  }
}
