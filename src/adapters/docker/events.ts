import { StringDecoder } from 'node:string_decoder';

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
const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Splits the event stream into lines (chunks do not align with events; a UTF-8 sequence can span
 * two chunks) and hands each parsed event to `onEvent`. Returns a function to feed chunks to.
 */
export function eventLineSplitter(onEvent: (event: DockerEvent) => void, onBadLine: (reason: string) => void): (chunk: Buffer) => void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  return (chunk) => {
    const lines = (partial + decoder.write(chunk)).split('\n');
    partial = lines.pop()!;
    if (partial.length > MAX_LINE_BYTES) {
      onBadLine(`event line over ${MAX_LINE_BYTES} bytes skipped`);
      partial = '';
    }
    for (const line of lines) {
      if (line.trim() === '') continue;
      const event = parseEvent(line);
      if (event) onEvent(event);
      else onBadLine('unparseable event line skipped');
    }
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
