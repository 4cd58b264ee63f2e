import { appendFileSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TreeResult } from '../adapters/selinux/native.js';

/** One relabel (or a failed or refused one) as kept in the state dir and shown by `dockwarden status`. */
export interface RelabelRecord {
  readonly time: string;
  readonly container: { readonly id: string; readonly name: string };
  /** The real host path; untrusted text (a container may have named it). */
  readonly path: string;
  readonly outcome: RelabelOutcome;
  /** The root's label before and after; null when it had none / was not labelled. */
  readonly oldLabel: string | null;
  readonly newLabel: string | null;
  readonly counts: RelabelCounts | null;
  readonly errors: ReadonlyArray<{ readonly path: string; readonly code: string }>;
}

export type RelabelOutcome = 'relabelled' | 'partial' | 'unsupported' | 'read-only' | 'failed' | 'refused';

export type RelabelCounts = Pick<TreeResult, 'visited' | 'labelled' | 'alreadyLabelled' | 'otherFilesystem' | 'vanished' | 'failed'>;

export function countsOf({ visited, labelled, alreadyLabelled, otherFilesystem, vanished, failed }: TreeResult): RelabelCounts {
  return { visited, labelled, alreadyLabelled, otherFilesystem, vanished, failed };
}

const FILE = 'selinux-relabels.jsonl';
/** One older generation is kept: the log stays bounded however many containers come and go. */
const ROTATE_AT_BYTES = 1024 * 1024;

/** Appends one JSON line (a single small write: a crash leaves at most a torn last line, skipped on read). */
export function appendRelabelRecord(stateDir: string, record: RelabelRecord): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const file = join(stateDir, FILE);
  if (sizeOf(file) > ROTATE_AT_BYTES) renameSync(file, `${file}.1`);
  appendFileSync(file, `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** Every record kept, oldest first; lines that do not parse are skipped. */
export function readRelabelRecords(stateDir: string): RelabelRecord[] {
  const file = join(stateDir, FILE);
  return [`${file}.1`, file].flatMap((path) => linesOf(path)).flatMap((line) => {
    try {
      const record = JSON.parse(line) as RelabelRecord;
      return typeof record.path === 'string' && typeof record.outcome === 'string' ? [record] : [];
    } catch {
      return [];
    }
  });
}

/** The latest record of each path, by path. */
export function latestByPath(records: readonly RelabelRecord[]): RelabelRecord[] {
  return [...new Map(records.map((r) => [r.path, r])).values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function linesOf(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter((line) => line !== '');
  } catch {
    return [];
  }
}
