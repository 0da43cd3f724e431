/**
 * Writes MessagePack into a buffer sized in advance, byte for byte as msgpackr encodes the same
 * values with statePackr's options (msgpack-writer.test.ts compares them): the counterpart of
 * MsgpackReader for the KV rows of a snapshot. Packing the rows through msgpackr meant an array
 * per row, msgpackr's own buffer grown to the whole table, then copies; this writes each field
 * once, straight into the snapshot.
 */
import { assert } from '../lib/assert.js';
import { UINT64_MAX } from './limits.js';

/** Bytes of a msgpack str header + UTF-8 for `text` (lone surrogates count as U+FFFD, as written). */
export function stringBytes(text: string): number {
  if (text.length < 0x20 && isAscii(text)) return 1 + text.length;
  const length = Buffer.byteLength(text, 'utf8');
  return lengthHeaderBytes(length, 0x20) + length;
}

/** True when every character of `text` is ASCII: its UTF-8 is one byte per character. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** Bytes of a bin (or nil for null). */
export function bytesOrNullBytes(value: Uint8Array | null): number {
  return value === null ? 1 : lengthHeaderBytes(value.byteLength, 0) + value.byteLength;
}

/** Bytes of a non-negative safe integer: msgpackr's uint forms up to 32 bits, float64 above. */
export function countBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x100) return 2;
  if (value < 0x10000) return 3;
  return value <= 0xffffffff ? 5 : 9;
}

/** Bytes of a uint64 written as msgpackr writes a BigInt: always 9. */
export const UINT64_BYTES = 9;

/** Bytes of an array header for `count` items. */
export function arrayHeaderBytes(count: number): number {
  if (count < 16) return 1;
  return count < 0x10000 ? 3 : 5;
}

/** Bytes of a map header for `count` key/value pairs (statePackr's variableMapSize forms). */
export function mapHeaderBytes(count: number): number {
  return arrayHeaderBytes(count);
}

/** A str/bin header: fix form below `fixLimit` (0x20 for str, none for bin), then 8, 16, 32-bit lengths. */
function lengthHeaderBytes(length: number, fixLimit: number): number {
  if (length < fixLimit) return 1;
  if (length < 0x100) return 2;
  return length < 0x10000 ? 3 : 5;
}

/** `text` as a msgpack string, for constant field names written with `encoded`. */
export function encodedString(text: string): Uint8Array {
  const bytes = new Uint8Array(stringBytes(text));
  const writer = new MsgpackWriter(bytes);
  writer.string(text);
  writer.assertFull();
  return bytes;
}

/** A write position in a buffer that must end up exactly full. */
export class MsgpackWriter {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #buffer: Buffer;
  #offset = 0;

  /** Writes into `bytes` (a view into the caller's buffer), from its start. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Asserts that every byte was written: the sizes computed in advance were right. */
  assertFull(): void {
    assert(this.#offset === this.#bytes.byteLength, 'the msgpack writer filled its buffer exactly');
  }

  /** An array header. */
  arrayHeader(count: number): void {
    assert(Number.isSafeInteger(count) && count >= 0 && count <= 0xffffffff, 'an array has at most 2^32-1 items');
    if (count < 16) this.#byte(0x90 | count);
    else if (count < 0x10000) this.#uint16(0xdc, count);
    else this.#uint32(0xdd, count);
  }

  /** Bytes that are msgpack already: constant field names, encoded once (`encodedString`). */
  encoded(bytes: Uint8Array): void {
    this.#bytes.set(bytes, this.#reserve(bytes.byteLength));
  }

  /** A map header for `count` key/value pairs. */
  mapHeader(count: number): void {
    assert(Number.isSafeInteger(count) && count >= 0 && count <= 0xffffffff, 'a map has at most 2^32-1 pairs');
    if (count < 16) this.#byte(0x80 | count);
    else if (count < 0x10000) this.#uint16(0xde, count);
    else this.#uint32(0xdf, count);
  }

  /** A string, UTF-8. */
  string(text: string): void {
    if (text.length < 0x20 && isAscii(text)) {
      // A short ASCII string (keys, session ids' parts, names): byte by byte, without Buffer.write's call overhead.
      this.#byte(0xa0 | text.length);
      const start = this.#reserve(text.length);
      for (let i = 0; i < text.length; i++) this.#bytes[start + i] = text.charCodeAt(i);
      return;
    }
    const length = Buffer.byteLength(text, 'utf8');
    if (length < 0x20) this.#byte(0xa0 | length);
    else if (length < 0x100) this.#uint8(0xd9, length);
    else if (length < 0x10000) this.#uint16(0xda, length);
    else this.#uint32(0xdb, length);
    const start = this.#reserve(length);
    const written = this.#buffer.write(text, start, length, 'utf8');
    assert(written === length, 'a string is written whole');
  }

  /** A bin, or nil for null. */
  bytesOrNull(value: Uint8Array | null): void {
    if (value === null) {
      this.#byte(0xc0);
      return;
    }
    const length = value.byteLength;
    if (length < 0x100) this.#uint8(0xc4, length);
    else if (length < 0x10000) this.#uint16(0xc5, length);
    else this.#uint32(0xc6, length);
    this.#bytes.set(value, this.#reserve(length));
  }

  /** A uint64 as msgpackr writes a BigInt: int64 below 2^63, uint64 from there. */
  uint64(value: bigint): void {
    assert(value >= 0n && value <= UINT64_MAX, 'a uint64 is in [0, 2^64-1]');
    if (value < 0x8000000000000000n) {
      this.#byte(0xd3);
      this.#view.setBigInt64(this.#reserve(8), value);
    } else {
      this.#byte(0xcf);
      this.#view.setBigUint64(this.#reserve(8), value);
    }
  }

  /** A non-negative safe integer, as msgpackr writes a number. */
  count(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, 'a count is a non-negative safe integer');
    if (value < 0x80) this.#byte(value);
    else if (value < 0x100) this.#uint8(0xcc, value);
    else if (value < 0x10000) this.#uint16(0xcd, value);
    else if (value <= 0xffffffff) this.#uint32(0xce, value);
    else {
      this.#byte(0xcb);
      this.#view.setFloat64(this.#reserve(8), value);
    }
  }

  #byte(value: number): void {
    this.#bytes[this.#reserve(1)] = value;
  }

  #uint8(type: number, value: number): void {
    this.#byte(type);
    this.#byte(value);
  }

  #uint16(type: number, value: number): void {
    this.#byte(type);
    this.#view.setUint16(this.#reserve(2), value);
  }

  #uint32(type: number, value: number): void {
    this.#byte(type);
    this.#view.setUint32(this.#reserve(4), value);
  }

  /** Moves past `byteCount` bytes and returns where they start; asserts they fit. */
  #reserve(byteCount: number): number {
    const start = this.#offset;
    assert(byteCount <= this.#bytes.byteLength - start, 'the msgpack writer stays within its buffer');
    this.#offset = start + byteCount;
    return start;
  }
}
