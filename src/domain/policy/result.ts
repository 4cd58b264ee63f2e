import type { Policy } from './model.js';

/** One thing wrong with a policy file, located; line and column are 1-based, 0 when there is no position (unreadable file). */
export interface PolicyError {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** Where in the document, e.g. `ports.rules[2].allow[0]`; empty for the document itself. */
  readonly path: string;
  readonly message: string;
}

export type PolicyResult = { readonly ok: true; readonly policy: Policy } | { readonly ok: false; readonly errors: readonly PolicyError[] };

/** `policy.yaml:14:9: ports.rules[2].allow[0]: "10.0.0.300/8" is not an IP address or CIDR` */
export function formatPolicyError(error: PolicyError): string {
  const where = error.line > 0 ? `${error.file}:${error.line}:${error.column}` : error.file;
  return error.path ? `${where}: ${error.path}: ${error.message}` : `${where}: ${error.message}`;
}
