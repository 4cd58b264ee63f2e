import { compileGlob } from '../domain/glob.js';
import type { Glob, Policy } from '../domain/policy/model.js';

/**
 * A policy crosses from the worker that validated it to the daemon by structured clone, which copies
 * data (Maps included) but no functions: the only functions in a policy are its compiled globs, sent as
 * their pattern and compiled again on arrival.
 */
const GLOB = '\0glob';

export type TransferablePolicy = { readonly [GLOB]?: never } & Record<string, unknown>;

export function toTransferable(policy: Policy): TransferablePolicy {
  return mapGlobs(policy, (glob) => ({ [GLOB]: (glob as Glob).pattern }), isGlob) as TransferablePolicy;
}

export function fromTransferable(data: TransferablePolicy): Policy {
  return mapGlobs(data, (marked) => compileGlob((marked as Record<string, string>)[GLOB]!), (value) => Object.hasOwn(value, GLOB)) as Policy;
}

function isGlob(value: object): boolean {
  return typeof (value as Partial<Glob>).test === 'function' && typeof (value as Partial<Glob>).pattern === 'string';
}

/** A copy of `value` with every object `is` picks replaced; plain data, arrays and Maps walked, nothing else in a policy. */
function mapGlobs(value: unknown, replace: (glob: object) => unknown, is: (value: object) => boolean): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (is(value)) return replace(value);
  if (Array.isArray(value)) return value.map((item) => mapGlobs(item, replace, is));
  if (value instanceof Map) return new Map([...value].map(([key, item]) => [key, mapGlobs(item, replace, is)]));
  return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapGlobs(item, replace, is)]));
}
