/**
 * A JSON parser that keeps every key of an object, in order, duplicates included. `JSON.parse`
 * keeps one value per exact key at the position of its first occurrence, which loses what Go's
 * decoder sees: `{"privileged":true,"Privileged":false,"privileged":true}` is `true` to dockerd
 * (each key overwrites the field in turn) but would read `false` from JSON.parse's object.
 */

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;

/** An object as written: every entry in order. */
export interface JsonObject {
  readonly entries: ReadonlyArray<readonly [string, JsonValue]>;
}

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deeper nesting than any Docker request has; bounds the recursion. */
const MAX_DEPTH = 64;
// Sticky: matched at `lastIndex` without copying the rest of the text.
const STRING = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const LITERALS = [['true', true], ['false', false], ['null', null]] as const;

export class JsonSyntaxError extends Error {
  override readonly name = 'JsonSyntaxError';
}

export function parseJsonEntries(text: string): JsonValue {
  let at = 0;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at offset ${at}`);
  };
  const space = (): void => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    space();
    const c = text[at];
    if (c === '{') return object(depth);
    if (c === '[') return array(depth);
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    for (const [word, result] of LITERALS) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return result;
      }
    }
    return fail('unexpected character');
  };
  const object = (depth: number): JsonObject => {
    at++;
    const entries: Array<readonly [string, JsonValue]> = [];
    space();
    if (text[at] === '}') {
      at++;
      return { entries };
    }
    for (;;) {
      space();
      if (text[at] !== '"') fail('expected a key');
      const key = string();
      space();
      if (text[at++] !== ':') fail('expected ":"');
      entries.push([key, value(depth + 1)]);
      space();
      const next = text[at++];
      if (next === '}') return { entries };
      if (next !== ',') fail('expected "," or "}"');
    }
  };
  const array = (depth: number): JsonValue[] => {
    at++;
    const items: JsonValue[] = [];
    space();
    if (text[at] === ']') {
      at++;
      return items;
    }
    for (;;) {
      items.push(value(depth + 1));
      space();
      const next = text[at++];
      if (next === ']') return items;
      if (next !== ',') fail('expected "," or "]"');
    }
  };
  const string = (): string => {
    STRING.lastIndex = at;
    const match = STRING.exec(text);
    if (!match) return fail('malformed string');
    const quoted = match[0];
    at += quoted.length;
    // Without an escape the text between the quotes is the string (STRING admits no control character).
    return quoted.includes('\\') ? (JSON.parse(quoted) as string) : quoted.slice(1, -1);
  };
  const number = (): number => {
    NUMBER.lastIndex = at;
    const match = NUMBER.exec(text);
    if (!match) return fail('malformed number');
    at += match[0].length;
    return Number(match[0]);
  };
  const result = value(0);
  space();
  if (at !== text.length) fail('trailing characters');
  return result;
}
