/** One Docker engine event, reduced to what dockwarden routes on. Attribute values are untrusted. */
export interface DockerEvent {
  readonly type: string;
  /** `start`, `die`, … ; for execs dockerd appends the command (`exec_start: sh -c …`), which is cut off here. */
  readonly action: string;
  readonly id: string;
  /** Nanoseconds since the epoch, as dockerd stamped it. */
  readonly timeNano: bigint;
  readonly attributes: Readonly<Record<string, string>>;
}

/** A line longer than this is not an event we can use; it is skipped instead of growing the buffer forever. */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

const NEWLINE = 0x0a;

/**
 * Splits the event stream into lines (chunks do not align with events) and hands each parsed event
 * to `onEvent`. Works on bytes: a newline byte never occurs inside a UTF-8 sequence, so a line is
 * decoded whole once it is complete. Each byte is scanned once: the unfinished line is kept as a
 * list of chunks, never re-joined and re-scanned as it grows (a 15 MiB line in 64 KiB chunks would
 * otherwise cost quadratic time). A line over `MAX_LINE_BYTES` is dropped as it arrives and reported
 * once. Returns a function to feed chunks to.
 */
export function eventLineSplitter(onEvent: (event: DockerEvent) => void, onBadLine: (reason: string) => void): (chunk: Buffer) => void {
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let oversized = false;
  const take = (piece: Buffer): void => {
    if (oversized) return;
    if (partialBytes + piece.length > MAX_LINE_BYTES) {
      oversized = true;
      partial = [];
      partialBytes = 0;
      onBadLine(`event line over ${MAX_LINE_BYTES} bytes skipped`);
      return;
    }
    partial.push(piece);
    partialBytes += piece.length;
  };
  const endLine = (): void => {
    const line = oversized ? '' : Buffer.concat(partial, partialBytes).toString('utf8');
    partial = [];
    partialBytes = 0;
    oversized = false;
    if (line.trim() === '') return;
    const event = parseEvent(line);
    if (event) onEvent(event);
    else onBadLine('unparseable event line skipped');
  };
  return (chunk) => {
    let from = 0;
    for (let at = chunk.indexOf(NEWLINE, from); at !== -1; at = chunk.indexOf(NEWLINE, from)) {
      take(chunk.subarray(from, at));
      endLine();
      from = at + 1;
    }
    if (from < chunk.length) take(chunk.subarray(from));
  };
}

export function parseEvent(line: string): DockerEvent | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const { Type, Action, Actor, time, timeNano } = raw as Record<string, unknown>;
  const actor = (typeof Actor === 'object' && Actor !== null ? Actor : {}) as Record<string, unknown>;
  if (typeof Type !== 'string' || typeof Action !== 'string' || typeof actor.ID !== 'string') return null;
  const attributes: Record<string, string> = {};
  if (typeof actor.Attributes === 'object' && actor.Attributes !== null) {
    for (const [key, value] of Object.entries(actor.Attributes)) if (typeof value === 'string') attributes[key] = value;
  }
  const nanos = typeof timeNano === 'number' ? BigInt(Math.trunc(timeNano)) : BigInt(typeof time === 'number' ? Math.trunc(time) : 0) * 1_000_000_000n;
  return { type: Type, action: Action.split(':')[0]!, id: actor.ID, timeNano: nanos, attributes };
}
