/** How much of a value a message shows. */
export const MAX_QUOTED = 80;

/**
 * A value as messages show it: JSON (so control characters are escaped), cut short so a huge value cannot
 * flood a log. Only as much of a structure is read as is shown: an aliased mapping can stand for a
 * quarter of a million nodes, and a message quoting it must not walk them all.
 */
export function quote(value: unknown): string {
  if (typeof value === 'string') {
    const shown = JSON.stringify(value.slice(0, MAX_QUOTED));
    return value.length > MAX_QUOTED ? `${shown}… (${value.length} characters)` : shown;
  }
  const parts: string[] = [];
  let length = 0;
  const emit = (text: string): boolean => {
    parts.push(text);
    length += text.length;
    return length <= MAX_QUOTED;
  };
  const walk = (v: unknown): boolean => {
    if (v === null || typeof v !== 'object') return emit(typeof v === 'string' ? JSON.stringify(v.slice(0, MAX_QUOTED)) : shownScalar(v));
    const list = Array.isArray(v);
    if (!emit(list ? '[' : '{')) return false;
    let first = true;
    for (const key in v) {
      if (!Object.hasOwn(v, key)) continue;
      if ((!first && !emit(',')) || (!list && !emit(`${JSON.stringify(key.slice(0, MAX_QUOTED))}:`))) return false;
      first = false;
      if (!walk((v as Record<string, unknown>)[key])) return false;
    }
    return emit(list ? ']' : '}');
  };
  const complete = walk(value);
  const json = parts.join('');
  return complete ? json : `${json.slice(0, MAX_QUOTED)}…`;
}

/** A scalar as JSON would show it, without calling anything the value defines. */
function shownScalar(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : value > 0 ? 'Infinity' : value < 0 ? '-Infinity' : 'NaN';
  if (typeof value === 'boolean' || value === null) return String(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'bigint') return value.toString();
  return typeof value;
}
