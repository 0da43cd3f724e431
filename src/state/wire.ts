/**
 * The msgpack codec and the shape checks shared by commands and snapshots. Everything decoded is
 * checked field by field: a committed entry or a snapshot that does not match its type is
 * corruption or a bug, so the checks assert (STYLE §5: assert after decoding).
 */
import { Packr } from 'msgpackr';
import { assert, refuse } from '../lib/assert.js';
import { compareKeys, isWellFormed } from './ordered-map.js';
import { SLAB_VALUE_BYTES_MAX, UINT64_MAX, UINT64_ZERO } from './limits.js';

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

/**
 * The same options for decoding, except that byte strings decode as views into the input rather
 * than as copies: msgpackr's copy is one ArrayBuffer per value (~300 bytes of bookkeeping for a
 * 100-byte value, 1M of them in a large KV). Whoever keeps decoded bytes copies them out first,
 * with `copyBytes` or a ByteSlab (commands.ts, snapshot.ts), so nothing keeps the input alive.
 */
export const stateUnpackr = new Packr({
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'bigint',
  copyBuffers: false,
  variableMapSize: true,
  largeBigIntToFloat: false,
  largeBigIntToString: false,
  useBigIntExtension: false,
});

/** A decoded msgpack map. */
export type WireObject = Readonly<Record<string, unknown>>;

// The checks below run for every field of every command applied, so they build their message
// only when they fail (refuse): an eager template was a string per field, and expectOneOf's
// `allowed.join` ~2 % of a busy single server's CPU.

/** Asserts a plain object (a msgpack map) and returns it. */
export function expectObject(value: unknown, what: string): WireObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(`${what}: object expected`);
  if (value instanceof Uint8Array) refuse(`${what}: object expected, got bytes`);
  return value as WireObject;
}

/** Asserts an array and returns it. */
export function expectArray(value: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(value)) refuse(`${what}: array expected`);
  return value;
}

/** Asserts a well-formed string (no lone surrogate: keys compare by UTF-8 bytes). */
export function expectString(value: unknown, what: string): string {
  if (typeof value !== 'string') refuse(`${what}: string expected`);
  if (!isWellFormed(value)) refuse(`${what}: lone surrogate`);
  return value;
}

/** Asserts a boolean. */
export function expectBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') refuse(`${what}: boolean expected`);
  return value;
}

/** Asserts a non-negative safe integer (Raft indexes, ms, ns). */
export function expectCount(value: unknown, what: string): number {
  if (typeof value !== 'number') refuse(`${what}: number expected`);
  if (!Number.isSafeInteger(value)) refuse(`${what}: safe integer expected`);
  if (value < 0) refuse(`${what}: must not be negative`);
  return value;
}

/** Asserts a bigint in [0, 2^64-1] (Flags, cas indexes: Consul's uint64); zero is always UINT64_ZERO. */
export function expectUint64(value: unknown, what: string): bigint {
  if (typeof value !== 'bigint') refuse(`${what}: bigint expected`);
  if (value < 0n) refuse(`${what}: must not be negative`);
  if (value > UINT64_MAX) refuse(`${what}: must fit 64 bits`);
  return value === UINT64_ZERO ? UINT64_ZERO : value;
}

/** Asserts a byte string or null, and returns a copy in a buffer of its own, or null. */
export function expectBytesOrNull(value: unknown, what: string): Uint8Array | null {
  const view = expectBytesViewOrNull(value, what);
  return view === null ? null : copyBytes(view);
}

/**
 * Asserts a byte string or null, and returns a plain Uint8Array (not a Buffer) over the same
 * memory, or null: a view into whatever was decoded, which the caller must copy out before
 * keeping it (see stateUnpackr).
 */
export function expectBytesViewOrNull(value: unknown, what: string): Uint8Array | null {
  if (value === null) return null;
  if (!(value instanceof Uint8Array)) refuse(`${what}: bytes or null expected`);
  return toPlainBytes(value);
}

/** A copy of `bytes` in an ArrayBuffer of exactly its size. */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/**
 * Copies many small byte strings into a few shared ArrayBuffers and hands out views: a view costs
 * a typed array object, where a buffer of its own adds an ArrayBuffer, its backing store and a
 * malloc block per value. The price: a slab stays allocated while any of its views is alive, so
 * values overwritten later keep their slab's bytes. That waste is bounded by what the slab held
 * when it was filled (one command's values, or `slabBytes` of a snapshot's), never more than was
 * decoded in the first place. Values above SLAB_VALUE_BYTES_MAX get buffers of their own.
 */
export class ByteSlab {
  readonly #slabBytes: number;
  #slab: Uint8Array = new Uint8Array(0);
  #used = 0;

  /** `slabBytes`: the size of each shared buffer. */
  constructor(slabBytes: number) {
    assert(Number.isSafeInteger(slabBytes), 'slabBytes must be an integer');
    assert(slabBytes >= SLAB_VALUE_BYTES_MAX, 'a slab holds at least one of the largest shared values');
    this.#slabBytes = slabBytes;
  }

  /** A copy of `bytes` as a view into a shared buffer (or a buffer of its own if large). */
  copy(bytes: Uint8Array): Uint8Array {
    const view = this.allocate(bytes.byteLength);
    view.set(bytes);
    return view;
  }

  /** `length` zeroed bytes never handed out before: a view into a shared buffer, or a buffer of its own if large. */
  allocate(length: number): Uint8Array {
    if (length > SLAB_VALUE_BYTES_MAX) return new Uint8Array(length);
    if (this.#used + length > this.#slab.byteLength) {
      this.#slab = new Uint8Array(this.#slabBytes);
      this.#used = 0;
    }
    const view = this.#slab.subarray(this.#used, this.#used + length);
    this.#used += length;
    assert(view.byteLength === length, 'a slab view has the requested length');
    return view;
  }
}

/**
 * Copies `values` out of whatever they view: the small ones (≤ SLAB_VALUE_BYTES_MAX) into one
 * ArrayBuffer of exactly their total size (the values of one command: a txn's ops), the others
 * into buffers of their own. Same order; null stays null.
 */
export function copyBytesTogether(values: readonly (Uint8Array | null)[]): (Uint8Array | null)[] {
  let sharedBytes = 0;
  for (const value of values) if (value !== null && value.byteLength <= SLAB_VALUE_BYTES_MAX) sharedBytes += value.byteLength;
  const shared = new Uint8Array(sharedBytes);
  let used = 0;
  const copies = values.map((value) => {
    if (value === null) return null;
    if (value.byteLength > SLAB_VALUE_BYTES_MAX) return copyBytes(value);
    const view = shared.subarray(used, used + value.byteLength);
    view.set(value);
    used += value.byteLength;
    return view;
  });
  assert(used === sharedBytes, 'every small value was copied into the shared buffer');
  return copies;
}

/** Scratch space for flatString: keys up to 64 KiB / 3 characters avoid an allocation. */
const flattenScratch: Buffer = Buffer.allocUnsafe(64 * 1024);

/**
 * The same string as a flat (sequential) V8 string. msgpackr's native string extraction returns
 * keys as slices of a larger decoded string, each 32 bytes that keep their parent alive: ~40 bytes
 * more per stored key than a flat copy (measured on 1M keys). Only strings that are kept for long
 * go through this (KV keys); well-formed strings round-trip exactly through UTF-8.
 */
export function flatString(text: string): string {
  // Slices shorter than V8's SlicedString::kMinLength (13) are copies already.
  if (text.length < 13) return text;
  const bytesMax = text.length * 3;
  if (bytesMax > flattenScratch.byteLength) return Buffer.from(text, 'utf8').toString('utf8');
  const length = flattenScratch.write(text, 0, 'utf8');
  return flattenScratch.toString('utf8', 0, length);
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
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) refuse(`${what}: one of ${allowed.join('|')} expected`);
  return value as T;
}
