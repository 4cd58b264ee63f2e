/**
 * An alert's `details` carry what a container supplied (exec argv, mount lists, label values): a
 * container author can make them as large as dockerd accepts (megabytes). Every record is written
 * to disk per sink, logged and sent, so details are cut to bounds no input passes, and the cut is
 * said where it happens, never silent.
 */
export const DETAIL_BOUNDS = {
  /** Characters kept of one string. */
  stringChars: 1024,
  /** Items kept of one array. */
  arrayItems: 32,
  /** Keys kept of one object. */
  objectKeys: 64,
  /** Nesting kept; deeper values are replaced by a marker. */
  depth: 8,
  /** The serialised details as a whole; beyond it, tighter string and list bounds, then only a summary. */
  totalBytes: 16 * 1024,
} as const;

type Bounds = { readonly [K in keyof typeof DETAIL_BOUNDS]: number };

/** `details` within `bounds`: the same shape, with long strings, arrays and objects cut and marked. */
export function boundDetails(details: Readonly<Record<string, unknown>>, bounds: Bounds = DETAIL_BOUNDS): Record<string, unknown> {
  // Many fields each within their bound can still add up: tighter bounds first (shorter strings,
  // fewer items), and only when even those do not fit, the keys and how large it was.
  let bytes = 0;
  for (const shrink of [1, 4, 16]) {
    const tighter = { ...bounds, stringChars: Math.max(64, bounds.stringChars / shrink), arrayItems: Math.max(8, bounds.arrayItems / shrink) };
    const bounded = boundObject(details, tighter, 0);
    bytes = Buffer.byteLength(JSON.stringify(bounded));
    if (bytes <= bounds.totalBytes) return bounded;
  }
  return { truncated: true, detailsBytes: bytes, keys: Object.keys(details).slice(0, bounds.objectKeys) };
}

function boundValue(value: unknown, bounds: Bounds, depth: number): unknown {
  if (typeof value === 'string') return boundString(value, bounds);
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  if (depth >= bounds.depth) return '[nested too deep]';
  if (Array.isArray(value)) {
    const kept = value.slice(0, bounds.arrayItems).map((item) => boundValue(item, bounds, depth + 1));
    return value.length > bounds.arrayItems ? [...kept, `[${value.length - bounds.arrayItems} more]`] : kept;
  }
  return boundObject(value as Readonly<Record<string, unknown>>, bounds, depth + 1);
}

function boundObject(object: Readonly<Record<string, unknown>>, bounds: Bounds, depth: number): Record<string, unknown> {
  // Null prototype: keys come from containers (labels), and `__proto__` must stay a plain key.
  const result: Record<string, unknown> = Object.create(null);
  const keys = Object.keys(object);
  for (const key of keys.slice(0, bounds.objectKeys)) result[boundString(key, bounds)] = boundValue(object[key], bounds, depth);
  if (keys.length > bounds.objectKeys) result['[more keys]'] = keys.length - bounds.objectKeys;
  return result;
}

function boundString(text: string, bounds: Bounds): string {
  if (text.length <= bounds.stringChars) return text;
  // Never cut between the two halves of a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(text[bounds.stringChars - 1]!) ? bounds.stringChars - 1 : bounds.stringChars;
  return `${text.slice(0, end)}…[${text.length - end} more characters]`;
}
