import { isAlias, isMap, isPair, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

/** A position in a source file, 1-based; 0:0 when there is no better place to point at. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export type LocatedMessage = SourceLocation & { readonly message: string };

export interface YamlSource {
  /** The document as plain data (null for an empty document). */
  readonly value: unknown;
  /** Syntax errors, duplicate keys and exceeded bounds, located; `value` is unusable when there are any. */
  readonly errors: readonly LocatedMessage[];
  /** Where the node at `path` starts: its key (`'key'`, for unknown keys) or its value. */
  readonly locate: (path: readonly (string | number)[], at: 'key' | 'value') => SourceLocation;
}

/**
 * Bounds no admin-written file comes near and every input is held to, so that a policy or config
 * (re-read inside the running daemon) costs bounded time and memory whatever it holds. `nodes` counts
 * what the document expands to: an alias counts as everything it refers to, however often.
 */
export const YAML_LIMITS = { bytes: 4 * 1024 * 1024, nodes: 250_000, keys: 100_000, depth: 100 } as const;

/** Errors reported of one file: the first ones, then how many more, so a bad file cannot flood a terminal or a log. */
export const MAX_REPORTED_ERRORS = 100;

/** In file order (stable: errors at one position keep their order), the first `MAX_REPORTED_ERRORS` and a last line saying how many more. */
export function reportedErrors<T extends LocatedMessage>(errors: readonly T[], more: (last: T, message: string) => T): T[] {
  const sorted = [...errors].sort((a, b) => a.line - b.line || a.column - b.column);
  if (sorted.length <= MAX_REPORTED_ERRORS) return sorted;
  const message = `and ${sorted.length - MAX_REPORTED_ERRORS} more errors (only the first ${MAX_REPORTED_ERRORS} are reported)`;
  return [...sorted.slice(0, MAX_REPORTED_ERRORS), more(sorted[MAX_REPORTED_ERRORS - 1]!, message)];
}

/** The file's bytes as text: valid UTF-8 only (the BOM kept, so the text is exactly the file's bytes and its hash is theirs). */
export function decodeYamlBytes(bytes: Uint8Array, file: string, what: string): { readonly text: string } | { readonly error: LocatedMessage } {
  const at = { file, line: 0, column: 0 };
  if (bytes.length > YAML_LIMITS.bytes) return { error: { ...at, message: `the ${what} is ${bytes.length} bytes; at most ${YAML_LIMITS.bytes} bytes (${YAML_LIMITS.bytes / 1024 / 1024} MiB) are read` } };
  try {
    return { text: new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes) };
  } catch {
    return { error: { ...at, message: `the ${what} is not valid UTF-8` } };
  }
}

/** Offsets of a mapping's keys and values, or of a list's items: how a path into the data finds its text. */
interface Positions {
  readonly keys?: Map<string, { readonly key: number; readonly value: number }>;
  readonly items?: number[];
}

/**
 * Parses untrusted YAML keeping positions, so every later complaint can name file:line:column.
 * One pass in document order turns the syntax tree into plain data: keys are compared as YAML resolves
 * them (`true`, `"true"` and, under `%YAML 1.1`, `on` are one key), aliases are shared rather than copied
 * but counted by what they expand to, a recursive alias is an error, and each bound of `YAML_LIMITS` is
 * a located error naming it. Every step is linear in the document (a map per mapping, not a search per key).
 */
export function parseYamlSource(rawText: string, file: string): YamlSource {
  // A lone CR ends a line (old Mac files); as LF, same length, so offsets stay the file's.
  const text = rawText.length > YAML_LIMITS.bytes ? '' : rawText.replace(/\r(?!\n)/g, '\n');
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  /** Counted from the text itself: yaml's LineCounter misses line breaks inside some malformed constructs. */
  const position = (offset: number): SourceLocation => {
    let [low, high] = [0, lineStarts.length - 1];
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    return { file, line: low + 1, column: offset - lineStarts[low]! + 1 };
  };
  const where = new WeakMap<object, Positions>();
  let rootOffset = 0;
  const locate = (path: readonly (string | number)[], at: 'key' | 'value'): SourceLocation => {
    let data: unknown = value;
    let offset = rootOffset;
    let keyOffset: number | null = null;
    for (const step of path) {
      const positions = data !== null && typeof data === 'object' ? where.get(data) : undefined;
      const entry = positions?.keys?.get(String(step));
      const item = typeof step === 'number' ? positions?.items?.[step] : undefined;
      if (entry) [keyOffset, offset] = [entry.key, entry.value];
      else if (item !== undefined) [keyOffset, offset] = [null, item];
      else break;
      data = (data as Record<string | number, unknown>)[step];
    }
    return position(at === 'key' && keyOffset !== null ? keyOffset : offset);
  };

  let value: unknown = null;
  if (rawText.length > YAML_LIMITS.bytes) {
    return { value, errors: [{ ...position(0), message: `the document is ${rawText.length} characters; at most ${YAML_LIMITS.bytes} are read` }], locate };
  }
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  } catch (error) {
    // yaml records most stack exhaustion as errors; anything it throws is located at the start.
    return { value, errors: [{ ...position(0), message: describeThrown(error) }], locate };
  }
  const errors: LocatedMessage[] = doc.errors.map((e) => ({ ...position(e.pos[0]), message: yamlErrorMessage(e.message) }));
  if (errors.length > 0) return { value, errors, locate };
  rootOffset = doc.contents?.range[0] ?? 0;
  const built = toData(doc, where, (offset, message) => errors.push({ ...position(offset), message }));
  if (errors.length === 0) value = built;
  return { value, errors, locate };
}

/** The conversion of one document: anchors as met in document order, each aliased node converted once. */
function toData(doc: Document.Parsed, where: WeakMap<object, Positions>, fail: (offset: number, message: string) => void): unknown {
  const anchors = new Map<string, Node>();
  const converted = new Map<Node, unknown>();
  const inProgress = new Set<Node>();
  /** Nodes each converted value expands to (primitives: 1). */
  const sizes = new WeakMap<object, number>();
  const sizeOf = (data: unknown): number => (data !== null && typeof data === 'object' ? (sizes.get(data) ?? 1) : 1);
  let nodes = 0;
  let keys = 0;
  let stopped = false;
  const stop = (offset: number, message: string): null => {
    if (!stopped) fail(offset, message);
    stopped = true;
    return null;
  };
  const count = (n: number, offset: number): boolean => {
    nodes += n;
    if (nodes > YAML_LIMITS.nodes) stop(offset, `the document expands to more than ${YAML_LIMITS.nodes} nodes (aliases count as what they refer to); at most ${YAML_LIMITS.nodes}`);
    return !stopped;
  };

  const convert = (node: unknown, depth: number): unknown => {
    if (stopped || node === null || node === undefined) return null;
    const offset = (node as Node).range?.[0] ?? 0;
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) return stop(offset, `alias *${node.source} has no anchor &${node.source} before it`);
      if (inProgress.has(target)) return stop(offset, `alias *${node.source} refers to a node that contains it; a recursive structure is not allowed`);
      const data = converted.get(target);
      return count(sizeOf(data), offset) ? data : null;
    }
    if (depth > YAML_LIMITS.depth) return stop(offset, `the document nests deeper than ${YAML_LIMITS.depth} levels; at most ${YAML_LIMITS.depth}`);
    const n = node as Node;
    if (n.anchor) anchors.set(n.anchor, n);
    inProgress.add(n);
    const before = nodes;
    if (!count(1, offset)) return null;
    let data: unknown;
    if (isScalar(node)) data = node.value;
    else if (isMap(node)) data = convertMap(node.items, depth, offset);
    else if (isSeq(node)) data = convertSeq(node.items, depth);
    else data = stop(offset, 'unsupported YAML node');
    inProgress.delete(n);
    if (data !== null && typeof data === 'object') sizes.set(data, nodes - before);
    if (n.anchor) converted.set(n, data);
    return data;
  };

  const convertSeq = (items: readonly unknown[], depth: number): unknown[] => {
    const list: unknown[] = [];
    const offsets: number[] = [];
    for (const item of items) {
      // `!!omap` and `!!pairs` hold key-value pairs as list items: each is a one-key mapping.
      const data = isPair(item) ? convertMap([item], depth + 1, (item.key as Node | null)?.range?.[0] ?? 0) : convert(item, depth + 1);
      if (stopped) break;
      list.push(data);
      offsets.push(((isPair(item) ? item.key : item) as Node | null)?.range?.[0] ?? 0);
    }
    where.set(list, { items: offsets });
    return list;
  };

  const convertMap = (items: readonly unknown[], depth: number, mapOffset: number): Record<string, unknown> => {
    const map: Record<string, unknown> = {};
    const offsets = new Map<string, { key: number; value: number }>();
    const merges: Array<{ readonly data: unknown; readonly offset: number }> = [];
    for (const pair of items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const keyOffset = keyNode?.range?.[0] ?? mapOffset;
      const valueOffset = (pair.value as Node | null)?.range?.[0] ?? keyOffset;
      if (++keys > YAML_LIMITS.keys) return stop(keyOffset, `the document has more than ${YAML_LIMITS.keys} keys; at most ${YAML_LIMITS.keys}`) ?? map;
      if (keyNode !== null && !isScalar(keyNode)) return stop(keyOffset, 'a key must be a plain value (text, a number, true or false), not a mapping, list or alias') ?? map;
      const keyValue = keyNode?.value ?? null;
      // `%YAML 1.1` merge key `<<`: yaml resolves it to a symbol; its entries fill in what the mapping does not set.
      if (typeof keyValue === 'symbol') {
        merges.push({ data: convert(pair.value, depth + 1), offset: valueOffset });
        continue;
      }
      const key = keyValue === null ? '' : String(keyValue);
      if (offsets.has(key)) {
        // Compared as YAML reads them: `true` and "true", `1`, `0x1` and "1" are one key.
        fail(keyOffset, `duplicate key ${quoteKey(key)}; each key may appear once per mapping`);
        continue;
      }
      const data = convert(pair.value, depth + 1);
      if (stopped) return map;
      setOwn(map, key, data);
      offsets.set(key, { key: keyOffset, value: valueOffset });
    }
    for (const merge of merges) {
      const sources = Array.isArray(merge.data) ? merge.data : [merge.data];
      for (const source of sources) {
        if (source === null || typeof source !== 'object' || Array.isArray(source)) return stop(merge.offset, 'a merge (<<) takes a mapping or a list of mappings') ?? map;
        const sourceOffsets = where.get(source)?.keys;
        for (const [key, data] of Object.entries(source)) {
          if (offsets.has(key)) continue;
          if (!count(sizeOf(data), merge.offset)) return map;
          setOwn(map, key, data);
          offsets.set(key, sourceOffsets?.get(key) ?? { key: merge.offset, value: merge.offset });
        }
      }
    }
    where.set(map, { keys: offsets });
    return map;
  };

  return convert(doc.contents, 1);
}

/** An own property whatever the key: `__proto__` must be data, not the object's prototype. */
function setOwn(map: Record<string, unknown>, key: string, data: unknown): void {
  Object.defineProperty(map, key, { value: data, writable: true, enumerable: true, configurable: true });
}

function quoteKey(key: string): string {
  return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key);
}

/** yaml's first line, minus the position it repeats; its stack exhaustion named as the nesting bound it is. */
function yamlErrorMessage(message: string): string {
  if (message.includes('Maximum call stack size exceeded')) return `the document nests too deeply; at most ${YAML_LIMITS.depth} levels`;
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function describeThrown(error: unknown): string {
  if (error instanceof RangeError) return `the document nests too deeply; at most ${YAML_LIMITS.depth} levels`;
  return `cannot parse the document: ${error instanceof Error ? error.message.split('\n')[0] : 'unknown error'}`;
}
