import { FLOAT32_OPTIONS, Packr } from 'msgpackr';
import { assert } from '../lib/assert.js';
import type { Envelope } from './envelope.js';
import { validateEnvelope } from './envelope.js';
import { FRAME_BYTES_MAX, FRAME_HEADER_BYTES } from './limits.js';
import { WireError } from './wire-error.js';

/**
 * The codec of the server port: plain MessagePack, every option spelled out so no msgpackr default
 * (or a change of one) alters the wire.
 *
 * `int64AsType: 'number'`: our terms, indexes and ids are safe integers, which msgpackr writes as
 * uint32 or float64 and reads back exactly. Another encoder may send uint64; it decodes to the
 * nearest double, and anything above 2^53 rounds to at least 2^53, which is never a safe integer,
 * so validation refuses it instead of truncating it. 'bigint' would instead put bigints into RPC
 * payloads (JSON.stringify throws on them) and make every validator accept two number types.
 */
const packr = new Packr({
  useRecords: false, // plain maps, not msgpackr's record extension: any MessagePack peer reads us
  mapsAsObjects: true, // maps decode to plain objects, which the validators expect
  structuredClone: false, // refuse the id/pointer extensions (msgpackr checks for `=== false`)
  moreTypes: false, // never write Set/Error/RegExp extensions
  bundleStrings: false, // no string-bundle extension
  sequential: false, // each frame stands alone: no structures shared across frames
  copyBuffers: true, // a decoded bin owns its bytes: it must not pin the frame (or the socket chunk)
  int64AsType: 'number', // see above
  encodeUndefinedAsNil: true, // undefined travels as nil, not as msgpackr's extension 0
  useFloat32: FLOAT32_OPTIONS.NEVER, // numbers round-trip exactly
  useTimestamp32: false,
  largeBigIntToFloat: false,
  largeBigIntToString: false,
  useBigIntExtension: false,
  useToJSON: false, // encode the data given, not what a toJSON() of it says
});

/**
 * Encodes one envelope as a frame: a u32 big-endian body length, then the MessagePack body.
 * Throws WireError ERR_FRAME_TOO_LARGE when the body is over `frameBytesMax`: for an RPC result
 * that is an operating error the caller reports; for a Raft message it is a bug (the core bounds
 * its messages well below the limit).
 */
export function encodeFrame(envelope: Envelope, frameBytesMax = FRAME_BYTES_MAX): Buffer {
  assert(frameBytesMax > 0 && frameBytesMax <= FRAME_BYTES_MAX, 'frame limit out of range');
  const body = packr.pack(envelope);
  assert(body.length > 0, 'MessagePack never encodes a value in zero bytes');
  if (body.length > frameBytesMax) {
    throw new WireError('ERR_FRAME_TOO_LARGE', `a ${envelope.kind} frame of ${body.length} bytes is over the ${frameBytesMax}-byte limit`);
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Decodes and validates one frame body. Throws WireError: ERR_FRAME_GARBAGE when it is not one
 * complete MessagePack value, ERR_FRAME_INVALID when it is not a valid envelope.
 */
export function decodeBody(body: Uint8Array): Envelope {
  let value: unknown;
  try {
    value = packr.unpack(body);
  } catch (error) {
    // msgpackr throws on truncated values, trailing bytes, unknown extensions and (as RangeError)
    // on nesting deep enough to exhaust the stack: all of it is the peer's garbage.
    const reason = error instanceof Error ? error.message : String(error);
    throw new WireError('ERR_FRAME_GARBAGE', `undecodable MessagePack: ${reason.slice(0, 200)}`, { cause: error });
  }
  return validateEnvelope(value);
}

/** Chunks below this are packed into an accumulator instead of being kept one by one. */
const SMALL_CHUNK_BYTES = 1024;

/** Size of one accumulator: 16 small chunks at least, small enough to keep per connection. */
const ACCUMULATOR_BYTES = 16 * 1024;

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. The length prefix is checked
 * against the limit as soon as its 4 bytes arrive, and a body is assembled only once all of its
 * bytes are here, so an announced length never causes an allocation: a 4 GiB prefix is refused
 * with nothing allocated, and a connection buffers at most one frame plus one socket chunk.
 *
 * Use: `push(chunk)`, then `next()` until it returns null. After it throws, the stream is
 * unusable (its framing is lost) and the connection must close.
 */
export class FrameDecoder {
  readonly #chunks: Uint8Array[] = [];
  /** Bytes of #chunks[0] already consumed. */
  #offset = 0;
  /** Unconsumed bytes over all chunks. */
  #bufferedBytes = 0;
  /** Body length of the frame being assembled, once its prefix is read. */
  #bodyBytes: number | null = null;
  #frameBytesMax: number;
  #failed = false;
  /** Where small chunks are packed; always the last of #chunks while not null. */
  #accumulator: Buffer | null = null;
  #accumulatorUsed = 0;

  constructor(frameBytesMax = FRAME_BYTES_MAX) {
    assert(frameBytesMax > 0 && frameBytesMax <= FRAME_BYTES_MAX, 'frame limit out of range');
    this.#frameBytesMax = frameBytesMax;
  }

  /** Raises or lowers the limit for frames whose prefix is not read yet (after a handshake). */
  setFrameBytesMax(frameBytesMax: number): void {
    assert(frameBytesMax > 0 && frameBytesMax <= FRAME_BYTES_MAX, 'frame limit out of range');
    this.#frameBytesMax = frameBytesMax;
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  /** Adds received bytes. Cheap: nothing is copied or decoded until `next()`. */
  push(chunk: Uint8Array): void {
    assert(!this.#failed, 'frame decoder used after an error');
    if (chunk.byteLength === 0) return;
    this.#bufferedBytes += chunk.byteLength;
    if (chunk.byteLength >= SMALL_CHUNK_BYTES) {
      this.#chunks.push(chunk);
      this.#accumulator = null;
      return;
    }
    this.#appendSmall(chunk);
  }

  /** The next complete frame, decoded and validated, or null until more bytes arrive. */
  next(): Envelope | null {
    assert(!this.#failed, 'frame decoder used after an error');
    try {
      if (this.#bodyBytes === null) {
        if (this.#bufferedBytes < FRAME_HEADER_BYTES) return null;
        this.#bodyBytes = this.#readLength(this.#take(FRAME_HEADER_BYTES));
      }
      if (this.#bufferedBytes < this.#bodyBytes) return null;
      const body = this.#take(this.#bodyBytes);
      this.#bodyBytes = null;
      return decodeBody(body);
    } catch (error) {
      this.#failed = true;
      throw error;
    }
  }

  /** The stream ended: throws ERR_FRAME_TRUNCATED if it ended inside a frame. */
  end(): void {
    if (this.#failed) return;
    if (this.#bufferedBytes === 0 && this.#bodyBytes === null) return;
    this.#failed = true;
    const expected = this.#bodyBytes === null ? 'a length prefix' : `a ${this.#bodyBytes}-byte body`;
    throw new WireError('ERR_FRAME_TRUNCATED', `stream ended inside a frame: ${this.#bufferedBytes} bytes of ${expected}`);
  }

  #readLength(header: Uint8Array): number {
    const length = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(0);
    if (length > this.#frameBytesMax) {
      throw new WireError('ERR_FRAME_TOO_LARGE', `a frame of ${length} bytes announced, over the ${this.#frameBytesMax}-byte limit`);
    }
    if (length === 0) throw new WireError('ERR_FRAME_GARBAGE', 'an empty frame body');
    return length;
  }

  /** Removes `count` buffered bytes: a view when they sit in one chunk, else one copy. */
  #take(count: number): Uint8Array {
    assert(count <= this.#bufferedBytes, 'take beyond the buffered bytes');
    const first = this.#chunks[0];
    assert(first !== undefined, 'buffered bytes without a chunk');
    if (first.byteLength - this.#offset >= count) {
      const view = first.subarray(this.#offset, this.#offset + count);
      this.#consume(count);
      return view;
    }
    const joined = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.#chunks[0];
      assert(chunk !== undefined, 'ran out of chunks while joining');
      const piece = Math.min(count - filled, chunk.byteLength - this.#offset);
      joined.set(chunk.subarray(this.#offset, this.#offset + piece), filled);
      filled += piece;
      this.#consume(piece);
    }
    return joined;
  }

  /** Drops `count` bytes from the front of the first chunk, and the chunk once it is used up. */
  #consume(count: number): void {
    const first = this.#chunks[0];
    assert(first !== undefined, 'consume without a chunk');
    this.#offset += count;
    this.#bufferedBytes -= count;
    if (this.#offset === first.byteLength) {
      this.#chunks.shift();
      this.#offset = 0;
      // The accumulator is always the last chunk: once the list is empty it has been consumed.
      if (this.#chunks.length === 0) this.#accumulator = null;
    }
  }

  /**
   * Copies a small chunk into the accumulator. A peer that drips a frame one byte per segment
   * would otherwise make us hold one Buffer object (~100 bytes of overhead) per byte.
   */
  #appendSmall(chunk: Uint8Array): void {
    let accumulator = this.#accumulator;
    const fresh = accumulator === null || accumulator.byteLength - this.#accumulatorUsed < chunk.byteLength;
    if (fresh) {
      accumulator = Buffer.allocUnsafe(ACCUMULATOR_BYTES);
      this.#accumulator = accumulator;
      this.#accumulatorUsed = 0;
    }
    assert(accumulator !== null, 'accumulator set above');
    accumulator.set(chunk, this.#accumulatorUsed);
    this.#accumulatorUsed += chunk.byteLength;
    // Views always start at byte 0, so #offset stays valid when the accumulator is #chunks[0].
    const view = accumulator.subarray(0, this.#accumulatorUsed);
    if (fresh) this.#chunks.push(view);
    else this.#chunks[this.#chunks.length - 1] = view;
  }
}
