/**
 * Reading a request body as dockerd reads it. dockerd decodes JSON with Go's encoding/json, which
 * matches object keys to struct fields **case-insensitively** (with Unicode simple folding: `K`
 * KELVIN SIGN is `k`, `ſ` LONG S is `s`) and lets a later key overwrite an earlier one. A gate that
 * read `body.HostConfig.Privileged` with JavaScript's exact keys would be walked around by
 * `{"hostconfig":{"privileged":true}}`. So every struct the gate looks at is first re-read here into
 * canonical field names, the way Go would fill the struct; map-typed fields (labels, options) keep
 * their exact keys, as Go's maps do. Unknown keys are dropped, as Go drops them.
 */

import { isJsonObject, type JsonValue } from './json-entries.js';

/** How to read one value: a leaf as is, a struct by its fields, a list or a map of one shape. */
export type Shape =
  | 'value'
  /** Go's `strslice.StrSlice`: a string or a list of strings (`CapAdd`, `Cmd`, …). */
  | 'strslice'
  | { readonly struct: Readonly<Record<string, Shape>> }
  | { readonly list: Shape }
  | { readonly map: Shape };

export const struct = (fields: Readonly<Record<string, Shape>>): Shape => ({ struct: fields });
export const list = (item: Shape): Shape => ({ list: item });
export const map = (value: Shape): Shape => ({ map: value });

const ASCII = /^[\x00-\x7f]*$/;

/** Go's case folding for keys compared with an ASCII field name. */
function foldKey(key: string): string {
  // Nearly every key is ASCII: one lower-casing, not a string built a character at a time.
  if (ASCII.test(key)) return key.toLowerCase();
  let folded = '';
  for (const c of key) folded += c === '\u212A' ? 'k' : c === '\u017F' ? 's' : c < '\x80' ? c.toLowerCase() : c;
  return folded;
}

/**
 * Each struct's fields by folded name, made once per shape (shapes are constants): made again for
 * every struct of every request, HostConfig's ~80 names were most of the gate's time and garbage
 * for a `docker create` (0.2 MB, a young-generation collection every few creates).
 */
const foldedFields = new WeakMap<Readonly<Record<string, Shape>>, ReadonlyMap<string, string>>();

function fieldsOf(struct: Readonly<Record<string, Shape>>): ReadonlyMap<string, string> {
  let fields = foldedFields.get(struct);
  if (fields === undefined) {
    fields = new Map(Object.keys(struct).map((name) => [foldKey(name), name]));
    foldedFields.set(struct, fields);
  }
  return fields;
}

/**
 * `value` read as Go would decode it into `shape`, as plain JavaScript values (objects with a null
 * prototype). Values of the wrong JSON type are kept as they are (dockerd would refuse the request
 * with 400; the checks that read them must not crash on them).
 */
export function readAsGo(value: JsonValue, shape: Shape): unknown {
  if (shape === 'value') return plain(value);
  if (shape === 'strslice') return typeof value === 'string' ? [value] : plain(value);
  if ('list' in shape) return Array.isArray(value) ? value.map((item: JsonValue) => readAsGo(item, shape.list)) : plain(value);
  if (!isJsonObject(value)) return plain(value);
  const result: Record<string, unknown> = Object.create(null);
  if ('map' in shape) {
    // A Go map: exact keys, the last duplicate wins.
    for (const [key, item] of value.entries) result[key] = readAsGo(item, shape.map);
    return result;
  }
  const fields = fieldsOf(shape.struct);
  // Every key that folds to a field overwrites it, in the order written: the last one wins.
  for (const [key, item] of value.entries) {
    const field = fields.get(foldKey(key));
    if (field !== undefined) result[field] = readAsGo(item, shape.struct[field]!);
  }
  return result;
}

/** A value with no shape to read it by, as JSON.parse would give it (objects: the last duplicate wins). */
function plain(value: JsonValue): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (!isJsonObject(value)) return value;
  const result: Record<string, unknown> = Object.create(null);
  for (const [key, item] of value.entries) result[key] = plain(item);
  return result;
}
