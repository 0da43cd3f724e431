/**
 * A cursor over MessagePack bytes for the one place where msgpackr's general decoder costs too
 * much: the KV rows of a snapshot (1M keys: ~0.8 s in msgpackr, then as long again turning its
 * row arrays, sliced strings, Buffer views and BigInts into entries, most of it garbage
 * collection). The reader decodes each field straight into what is kept: flat strings, byte views
 * to copy, numbers; whole sub-values it does not know hand over to msgpackr (`value`).
 *
 * It reads what msgpackr reads for the same field types, with the same checks as wire.ts's
 * `expect*` (msgpack-reader.test.ts compares them on random values), and asserts on anything
 * else: a snapshot that does not decode is corruption or a bug (STYLE §5).
 */
import type { Packr } from 'msgpackr';
import { AssertionError, assert, refuse } from '../lib/assert.js';
import { isWellFormed } from './ordered-map.js';
import { UINT64_MAX, UINT64_ZERO } from './limits.js';


/** A read position in `bytes`; every read moves past what it read. */
export class MsgpackReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  /** The same memory as a Buffer, for its UTF-8 decoder (a flat string per call). */
  readonly #buffer: Buffer;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** True when every byte was read. */
  get isAtEnd(): boolean {
    return this.#offset === this.#bytes.byteLength;
  }

  /** Bytes not read yet. */
  get remainingBytes(): number {
    return this.#bytes.byteLength - this.#offset;
  }

  /** The type byte of the next value, not consumed; undefined at the end. */
  peekType(): number | undefined {
    return this.#bytes[this.#offset];
  }

  /** True when the next value is a string (of any length form). */
  isStringNext(): boolean {
    const type = this.peekType();
    return type !== undefined && ((type >= 0xa0 && type <= 0xbf) || (type >= 0xd9 && type <= 0xdb));
  }

  /**
   * True when the next value is the short ASCII string `name`, which is then consumed; false,
   * with nothing consumed, otherwise. Compares bytes: no string is made (map field names).
   */
  isNext(name: string): boolean {
    assert(name.length < 0x20, 'isNext compares fixstr names');
    const start = this.#offset;
    if (this.#bytes[start] !== (0xa0 | name.length) || name.length >= this.#bytes.byteLength - start) return false;
    for (let i = 0; i < name.length; i++) if (this.#bytes[start + 1 + i] !== name.charCodeAt(i)) return false;
    this.#offset = start + 1 + name.length;
    return true;
  }

  /** A map header: its number of key/value pairs. */
  mapHeader(what: string): number {
    const type = this.#byte(what);
    if (type >= 0x80 && type <= 0x8f) return type & 0x0f;
    if (type === 0xde) return this.#uint(2, what);
    if (type !== 0xdf) refuse(`${what}: map expected`);
    return this.#uint(4, what);
  }

  /** An array header: its number of items. */
  arrayHeader(what: string): number {
    const type = this.#byte(what);
    if (type >= 0x90 && type <= 0x9f) return type & 0x0f;
    if (type === 0xdc) return this.#uint(2, what);
    if (type !== 0xdd) refuse(`${what}: array expected`);
    return this.#uint(4, what);
  }

  /** A well-formed string (expectString), decoded from UTF-8 into a flat string. */
  string(what: string): string {
    const type = this.#byte(what);
    let length: number;
    if (type >= 0xa0 && type <= 0xbf) length = type & 0x1f;
    else if (type === 0xd9) length = this.#uint(1, what);
    else if (type === 0xda) length = this.#uint(2, what);
    else {
      if (type !== 0xdb) refuse(`${what}: string expected`);
      length = this.#uint(4, what);
    }
    if (length === 0) return '';
    const start = this.#advance(length, what);
    const text = this.#buffer.toString('utf8', start, start + length);
    if (!isWellFormed(text)) refuse(`${what}: lone surrogate`);
    return text;
  }

  /** A byte string or nil (expectBytesViewOrNull): a view into the bytes read, to copy before keeping. */
  bytesViewOrNull(what: string): Uint8Array | null {
    const type = this.#byte(what);
    if (type === 0xc0) return null;
    let length: number;
    if (type === 0xc4) length = this.#uint(1, what);
    else if (type === 0xc5) length = this.#uint(2, what);
    else {
      if (type !== 0xc6) refuse(`${what}: bytes or null expected`);
      length = this.#uint(4, what);
    }
    const start = this.#advance(length, what);
    return this.#bytes.subarray(start, start + length);
  }

  /**
   * A non-negative safe integer (expectCount). msgpackr decodes every integer form up to 32 bits
   * and both float forms as numbers (64-bit integers as BigInts, which expectCount refuses).
   */
  count(what: string): number {
    const type = this.#byte(what);
    let value: number;
    if (type <= 0x7f) return type;
    if (type === 0xcc) value = this.#uint(1, what);
    else if (type === 0xcd) value = this.#uint(2, what);
    else if (type === 0xce) value = this.#uint(4, what);
    else if (type === 0xd0) value = this.#view.getInt8(this.#advance(1, what));
    else if (type === 0xd1) value = this.#view.getInt16(this.#advance(2, what));
    else if (type === 0xd2) value = this.#view.getInt32(this.#advance(4, what));
    else if (type === 0xca) value = this.#view.getFloat32(this.#advance(4, what));
    else {
      if (type !== 0xcb) refuse(`${what}: number expected`);
      value = this.#view.getFloat64(this.#advance(8, what));
    }
    if (!Number.isSafeInteger(value)) refuse(`${what}: safe integer expected`);
    if (value < 0) refuse(`${what}: must not be negative`);
    return value;
  }

  /** A uint64 (expectUint64): msgpackr decodes only the 64-bit forms as BigInts. Zero is shared. */
  uint64(what: string): bigint {
    const type = this.#byte(what);
    if (type !== 0xcf && type !== 0xd3) refuse(`${what}: bigint expected`);
    const start = this.#advance(8, what);
    if (this.#view.getUint32(start) === 0 && this.#view.getUint32(start + 4) === 0) return UINT64_ZERO;
    const value = type === 0xcf ? this.#view.getBigUint64(start) : this.#view.getBigInt64(start);
    if (value < 0n) refuse(`${what}: must not be negative`);
    if (value > UINT64_MAX) refuse(`${what}: must fit 64 bits`);
    return value;
  }

  /** The next value, whatever it is, decoded by `unpackr` (msgpackr) from its own bytes. */
  value(unpackr: Packr, what: string): unknown {
    const start = this.#offset;
    this.skip(what);
    return unpackr.unpack(this.#bytes.subarray(start, this.#offset));
  }

  /** Moves past the next value, nested arrays and maps included (iteratively: no recursion depth). */
  skip(what: string): void {
    let pending = 1;
    while (pending > 0) {
      pending--;
      const type = this.#byte(what);
      if (type <= 0x7f || type >= 0xe0 || type === 0xc0 || type === 0xc2 || type === 0xc3) continue;
      if (type <= 0x8f) pending += 2 * (type & 0x0f);
      else if (type <= 0x9f) pending += type & 0x0f;
      else if (type <= 0xbf) this.#advance(type & 0x1f, what);
      else if (type === 0xdc) pending += this.#uint(2, what);
      else if (type === 0xdd) pending += this.#uint(4, what);
      else if (type === 0xde) pending += 2 * this.#uint(2, what);
      else if (type === 0xdf) pending += 2 * this.#uint(4, what);
      else this.#advance(this.#scalarBytes(type, what), what);
    }
  }

  /** The bytes after the type byte of a scalar (string, bin, ext, number), length fields read. */
  #scalarBytes(type: number, what: string): number {
    switch (type) {
      case 0xc4: case 0xd9: return this.#uint(1, what);
      case 0xc5: case 0xda: return this.#uint(2, what);
      case 0xc6: case 0xdb: return this.#uint(4, what);
      case 0xc7: return this.#uint(1, what) + 1; // ext 8: length, type, data
      case 0xc8: return this.#uint(2, what) + 1;
      case 0xc9: return this.#uint(4, what) + 1;
      case 0xcc: case 0xd0: return 1;
      case 0xcd: case 0xd1: return 2;
      case 0xca: case 0xce: case 0xd2: return 4;
      case 0xcb: case 0xcf: case 0xd3: return 8;
      case 0xd4: return 2; // fixext 1: type, data
      case 0xd5: return 3;
      case 0xd6: return 5;
      case 0xd7: return 9;
      case 0xd8: return 17;
      default:
        throw new AssertionError(`${what}: byte 0x${type.toString(16)} is not a MessagePack type`);
    }
  }

  #byte(what: string): number {
    return this.#bytes[this.#advance(1, what)] as number;
  }

  #uint(byteCount: 1 | 2 | 4, what: string): number {
    const start = this.#advance(byteCount, what);
    if (byteCount === 1) return this.#bytes[start] as number;
    return byteCount === 2 ? this.#view.getUint16(start) : this.#view.getUint32(start);
  }

  /** Moves past `byteCount` bytes and returns where they start; asserts they are there. */
  #advance(byteCount: number, what: string): number {
    const start = this.#offset;
    if (byteCount > this.#bytes.byteLength - start) refuse(`${what}: truncated`);
    this.#offset = start + byteCount;
    return start;
  }
}
