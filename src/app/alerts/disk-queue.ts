import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Alert } from '../../domain/alerts/alert.js';

const RECORD = /^(\d{16})\.json$/;

/**
 * One sink's undelivered alerts, one file per record in `dir`, oldest first. A record is on disk
 * (written to a temporary name, fsynced, renamed, directory fsynced) before `push` returns, so it
 * survives a crash, and it leaves only once delivered. Bounded: a push beyond `limit` drops the
 * oldest and says how many, for the caller to report.
 */
export class DiskQueue {
  private readonly entries: Array<{ readonly file: string; readonly alert: Alert }> = [];
  private nextSeq = 0;
  /** Records found unreadable at open (hand edits, a full disk in an earlier run); deleted and counted. */
  readonly unreadableAtOpen: number;

  constructor(
    private readonly dir: string,
    private readonly limit: number,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let unreadable = 0;
    for (const name of readdirSync(dir).sort()) {
      const seq = RECORD.exec(name)?.[1];
      const file = join(dir, name);
      if (seq === undefined) {
        if (name.endsWith('.tmp')) unlinkSync(file); // a write that never completed, never acknowledged
        continue;
      }
      try {
        this.entries.push({ file, alert: JSON.parse(readFileSync(file, 'utf8')) as Alert });
      } catch {
        unlinkSync(file);
        unreadable++;
      }
      this.nextSeq = Number(seq) + 1;
    }
    this.unreadableAtOpen = unreadable;
  }

  get size(): number {
    return this.entries.length;
  }

  /** How many records a push now would drop. */
  get overflowOnPush(): number {
    return Math.max(0, this.entries.length + 1 - this.limit);
  }

  oldest(): Alert | undefined {
    return this.entries[0]?.alert;
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
    this.entries.push({ file, alert });
    return dropped;
  }

  /** Removes a delivered record (by id: it may have been dropped meanwhile). */
  remove(id: string): void {
    const index = this.entries.findIndex((e) => e.alert.id === id);
    if (index < 0) return;
    const [entry] = this.entries.splice(index, 1);
    unlinkSync(entry!.file);
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
