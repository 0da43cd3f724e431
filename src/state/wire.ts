/**
 * The msgpack codec and the shape checks shared by commands and snapshots. Everything decoded is
 * checked field by field: a committed entry or a snapshot that does not match its type is
 * corruption or a bug, so the checks assert (STYLE §5: assert after decoding).
 */
import { Packr } from 'msgpackr';
import { assert } from '../lib/assert.js';
import { compareKeys, isWellFormed } from './ordered-map.js';
import { UINT64_MAX } from './limits.js';

/**
 * Plain MessagePack with every option explicit, so any version of any peer reads it:
 * - `useRecords: false`, `structuredClone: false`, `moreTypes: false`, `bundleStrings: false`:
 *   no msgpackr extensions;
 * - `mapsAsObjects: true`: maps decode to plain objects (msgpackr renames a `__proto__` key);
 * - `int64AsType: 'bigint'`: bigints encode as 64-bit integers and decode back to bigints, so a
 *   Flags value of 2^64-1 is exact; plain numbers above 2^32 encode as float64 and decode as exact
 *   numbers (all our numbers are safe integers);
 * - `copyBuffers: true`: decoded byte strings are copies, never views into a buffer the transport
 *   may reuse;
 * - `variableMapSize: true`: correct for objects of any size.
 */
export const statePackr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'bigint',
  copyBuffers: true,
  variableMapSize: true,
  largeBigIntToFloat: false,
  largeBigIntToString: false,
  useBigIntExtension: false,
});

/** A decoded msgpack map. */
export type WireObject = Readonly<Record<string, unknown>>;

/** Asserts a plain object (a msgpack map) and returns it. */
export function expectObject(value: unknown, what: string): WireObject {
  assert(typeof value === 'object' && value !== null && !Array.isArray(value), `${what}: object expected`);
  assert(!(value instanceof Uint8Array), `${what}: object expected, got bytes`);
  return value as WireObject;
}

/** Asserts an array and returns it. */
export function expectArray(value: unknown, what: string): readonly unknown[] {
  assert(Array.isArray(value), `${what}: array expected`);
  return value;
}

/** Asserts a well-formed string (no lone surrogate: keys compare by UTF-8 bytes). */
export function expectString(value: unknown, what: string): string {
  assert(typeof value === 'string', `${what}: string expected`);
  assert(isWellFormed(value), `${what}: lone surrogate`);
  return value;
}

/** Asserts a boolean. */
export function expectBoolean(value: unknown, what: string): boolean {
  assert(typeof value === 'boolean', `${what}: boolean expected`);
  return value;
}

/** Asserts a non-negative safe integer (Raft indexes, ms, ns). */
export function expectCount(value: unknown, what: string): number {
  assert(typeof value === 'number', `${what}: number expected`);
  assert(Number.isSafeInteger(value), `${what}: safe integer expected`);
  assert(value >= 0, `${what}: must not be negative`);
  return value;
}

/** Asserts a bigint in [0, 2^64-1] (Flags, cas indexes: Consul's uint64). */
export function expectUint64(value: unknown, what: string): bigint {
  assert(typeof value === 'bigint', `${what}: bigint expected`);
  assert(value >= 0n, `${what}: must not be negative`);
  assert(value <= UINT64_MAX, `${what}: must fit 64 bits`);
  return value;
}

/** Asserts a byte string or null, and returns a plain Uint8Array (not a Buffer) or null. */
export function expectBytesOrNull(value: unknown, what: string): Uint8Array | null {
  if (value === null) return null;
  assert(value instanceof Uint8Array, `${what}: bytes or null expected`);
  return toPlainBytes(value);
}

/** Asserts an array of well-formed strings. */
export function expectStringArray(value: unknown, what: string): string[] {
  return expectArray(value, what).map((item, i) => expectString(item, `${what}[${i}]`));
}

/**
 * Asserts a map of string to string and returns a copy with its keys in UTF-8 order, so every
 * server (and a restored one) holds the same key order.
 */
export function expectStringRecord(value: unknown, what: string): Record<string, string> {
  const object = expectObject(value, what);
  const pairs: [string, string][] = Object.keys(object).map((key) => [
    expectString(key, `${what} key`),
    expectString(object[key], `${what}.${key}`),
  ]);
  return canonicalRecord(pairs);
}

/** Builds a record from pairs sorted by key (own properties, so `__proto__` is just a key). */
export function canonicalRecord(pairs: readonly (readonly [string, string])[]): Record<string, string> {
  const sorted = [...pairs].sort((a, b) => compareKeys(a[0], b[0]));
  return Object.fromEntries(sorted) as Record<string, string>;
}

/** The same bytes as a plain Uint8Array (a Buffer subclass would compare and print differently). */
export function toPlainBytes(bytes: Uint8Array): Uint8Array {
  if (Object.getPrototypeOf(bytes) === Uint8Array.prototype) return bytes;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Asserts one of the allowed string literals. */
export function expectOneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  assert(typeof value === 'string' && (allowed as readonly string[]).includes(value), `${what}: one of ${allowed.join('|')} expected`);
  return value as T;
}
