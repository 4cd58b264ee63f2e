import { closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerFacts, ExecFacts } from '../domain/facts.js';
import type { Enforcer } from './reconciler.js';

/**
 * The privileged execs the daemon has seen since it started, kept in its state dir for `dockwarden
 * check`: once an exec has ended dockerd stops listing it, and only the daemon saw its event.
 */
export interface ExecRecord {
  /** When the daemon that keeps the record started (ISO 8601). */
  readonly since: string;
  readonly execs: ReadonlyArray<{ readonly time: string; readonly containerId: string; readonly exec: ExecFacts }>;
}

export const EXEC_RECORD_FILE = 'privileged-execs.json';
/** The newest this many are kept: the file stays bounded however many execs a container runs. */
export const MAX_RECORDED_EXECS = 256;
/** Arguments kept per exec, and characters per argument (the command is untrusted and unbounded). */
const MAX_ARGS = 16;
const MAX_ARG_CHARS = 256;
/** Bounds the read: MAX_RECORDED_EXECS of bounded entries fit with room to spare. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/**
 * An enforcer that records each privileged exec the first time a sync shows it (dockerd still lists
 * it, or its event named it). The record starts empty when the daemon starts: it says what was seen
 * since then. Written whole to a temporary file and renamed, so a reader never sees half of it.
 */
export function execRecorder(stateDir: string, now: () => Date = () => new Date()): Enforcer {
  const record = { since: now().toISOString(), execs: [] as Array<ExecRecord['execs'][number]> };
  const seen = new Set<string>();
  write(stateDir, record);
  return {
    name: 'exec-record',
    async apply({ facts }) {
      const fresh = facts.execs.filter((e) => e.privileged && !seen.has(e.id));
      if (fresh.length === 0) return;
      for (const exec of fresh) {
        seen.add(exec.id);
        record.execs.push({ time: now().toISOString(), containerId: facts.id, exec: bounded(exec) });
      }
      for (const dropped of record.execs.splice(0, Math.max(0, record.execs.length - MAX_RECORDED_EXECS))) seen.delete(dropped.exec.id);
      write(stateDir, record);
    },
    // A gone container's execs stay recorded (bounded): they still happened.
    async forget() {},
  };
}

/** The daemon's record; null when there is none (no daemon ran with this state dir) or it cannot be read. */
export function readExecRecord(stateDir: string): ExecRecord | null {
  let fd: number;
  try {
    fd = openSync(join(stateDir, EXEC_RECORD_FILE), 'r');
  } catch {
    return null;
  }
  try {
    const { size } = fstatSync(fd);
    if (size > MAX_FILE_BYTES) return null;
    const buffer = Buffer.alloc(size);
    const read = readSync(fd, buffer, 0, size, 0);
    const parsed = JSON.parse(buffer.subarray(0, read).toString('utf8')) as ExecRecord;
    return typeof parsed.since === 'string' && Array.isArray(parsed.execs) ? parsed : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** The container's facts with the recorded privileged execs dockerd no longer lists, as finished ones. */
export function withRecordedExecs(facts: ContainerFacts, record: ExecRecord): ContainerFacts {
  const listed = new Set(facts.execs.map((e) => e.id));
  const recorded = record.execs.filter((r) => r.containerId === facts.id && !listed.has(r.exec.id)).map((r) => ({ ...r.exec, running: false, uids: null }));
  return recorded.length === 0 ? facts : { ...facts, execs: [...facts.execs, ...recorded] };
}

function bounded(exec: ExecFacts): ExecFacts {
  return { ...exec, command: exec.command.slice(0, MAX_ARGS).map((a) => a.slice(0, MAX_ARG_CHARS)), user: exec.user.slice(0, MAX_ARG_CHARS) };
}

function write(stateDir: string, record: ExecRecord): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const tmp = join(stateDir, `.${EXEC_RECORD_FILE}.${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(tmp, join(stateDir, EXEC_RECORD_FILE));
}
