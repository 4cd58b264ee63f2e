import { isMap, isPair, isScalar, LineCounter, parseDocument, type Node } from 'yaml';

/** A position in a source file, 1-based; 0:0 when there is no better place to point at. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
  readonly column: number;
}

export interface YamlSource {
  /** The document as plain data (null for an empty document). */
  readonly value: unknown;
  /** Syntax errors and duplicate keys, located; `value` is unusable when there are any. */
  readonly errors: ReadonlyArray<SourceLocation & { readonly message: string }>;
  /** Where the node at `path` starts: its key (`'key'`, for unknown keys) or its value. */
  readonly locate: (path: readonly (string | number)[], at: 'key' | 'value') => SourceLocation;
}

/**
 * Parses untrusted YAML keeping positions, so every later complaint can name file:line:column.
 * Alias expansion is capped: a "billion laughs" document is an error, not an outage.
 */
export function parseYamlSource(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const position = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  const errors = doc.errors.map((e) => ({ ...position(e.pos[0]), message: yamlErrorMessage(e.code, e.message, text.slice(e.pos[0])) }));
  let value: unknown = null;
  if (errors.length === 0) {
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (error) {
      errors.push({ ...position(0), message: (error as Error).message });
    }
  }

  const locate = (path: readonly (string | number)[], at: 'key' | 'value'): SourceLocation => {
    let node: unknown = doc.contents;
    let keyNode: unknown = null;
    for (const step of path) {
      const pair = isMap(node) ? node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(step)) : undefined;
      if (pair) {
        keyNode = pair.key;
        node = pair.value;
      } else if (node && typeof node === 'object' && 'items' in node && typeof step === 'number') {
        keyNode = null;
        node = (node as { items: unknown[] }).items[step];
      } else break;
    }
    const target = (at === 'key' && keyNode) || node;
    const range = (target as Node | null)?.range;
    return range ? position(range[0]) : position(0);
  };

  return { value, errors, locate };
}

/** yaml's first line, minus the position it repeats; a duplicate key also names the key (the text up to its colon). */
function yamlErrorMessage(code: string, message: string, from: string): string {
  if (code === 'DUPLICATE_KEY') {
    const key = (/^[^:\n]*/.exec(from)?.[0] ?? '').trim().slice(0, 80);
    return `duplicate key ${JSON.stringify(key)}; each key may appear once per mapping`;
  }
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}
