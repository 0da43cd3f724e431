import t from 'tap';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { AssertionError } from '../../src/lib/assert.js';
import { FrameDecoder, decodeBody, encodeFrame } from '../../src/transport/frame.js';
import { validateEnvelope } from '../../src/transport/envelope.js';
import { FRAME_BYTES_MAX } from '../../src/transport/limits.js';
import { WireError } from '../../src/transport/wire-error.js';
import { reportSuiteTotals } from '../faults/suite-summary.js';

/**
 * Bad input on the server port, in process (RELIABILITY.md "Bad input", P8), with fast-check's
 * shrinking: the frame decoder and the envelope validator must turn any byte stream into frames,
 * "need more bytes", or a WireError — never another exception, never an assertion (a bug), never
 * an allocation driven by an announced length. CONCLAVE_FUZZ_RUNS scales the case counts.
 */
const RUNS = Number(process.env.CONCLAVE_FUZZ_RUNS ?? 2000);
const figures: Record<string, unknown> = { runsPerProperty: RUNS };
reportSuiteTotals(t, 'fuzz-frame', figures);

/** A packer like a hostile peer's: anything msgpackr can write, records and extensions included. */
const loosePackr = new Packr({ useRecords: true, moreTypes: true, structuredClone: true });

function isWireError(error: unknown): boolean {
  return error instanceof WireError && !(error instanceof AssertionError);
}

/** Feeds `chunks` to a decoder; returns frames decoded and whether it failed with a WireError. */
function feed(chunks: readonly Uint8Array[], frameMax?: number): { frames: number; wireError: string | null } {
  const decoder = frameMax === undefined ? new FrameDecoder() : new FrameDecoder(frameMax);
  let frames = 0;
  try {
    for (const chunk of chunks) {
      decoder.push(chunk);
      while (decoder.next() !== null) frames++;
      // Nothing beyond one frame plus one chunk is ever buffered.
      if (decoder.bufferedBytes > (frameMax ?? FRAME_BYTES_MAX) + 4 + chunk.byteLength) throw new Error(`buffered ${decoder.bufferedBytes} bytes`);
    }
    decoder.end();
    return { frames, wireError: null };
  } catch (error) {
    if (isWireError(error)) return { frames, wireError: (error as WireError).code };
    throw error;
  }
}

const chunked = (bytes: Uint8Array, cuts: number[]): Uint8Array[] => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const point of points) {
    chunks.push(bytes.subarray(start, point));
    start = point;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
};

const messageArb = fc.record({
  type: fc.constantFrom('RequestVote', 'RequestVoteResponse', 'AppendEntries', 'AppendEntriesResponse', 'Heartbeat', 'HeartbeatResponse', 'InstallSnapshot', 'TimeoutNow', 'Bogus'),
  from: fc.oneof(fc.uuid(), fc.string()), to: fc.oneof(fc.uuid(), fc.string()),
  term: fc.oneof(fc.nat(), fc.constant(2 ** 53), fc.constant(-1), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER)),
  prevLogIndex: fc.oneof(fc.nat(), fc.constant(2 ** 60)), prevLogTerm: fc.nat(), commit: fc.nat(),
  entries: fc.array(fc.record({ index: fc.nat(), term: fc.nat(), type: fc.constantFrom('command', 'config', 'noop', 'x'), data: fc.uint8Array({ maxLength: 16 }) }), { maxLength: 3 }),
  granted: fc.boolean(), preVote: fc.boolean(), lastLogIndex: fc.nat(), lastLogTerm: fc.nat(), transfer: fc.boolean(), readContext: fc.nat(), guardMs: fc.nat(),
}, { requiredKeys: ['type', 'from', 'to', 'term'] });

const envelopeValueArb = fc.oneof(
  fc.record({ kind: fc.constant('hello'), protocolVersion: fc.oneof(fc.constant(1), fc.integer()), datacenter: fc.string(), clusterId: fc.option(fc.string()), serverId: fc.option(fc.uuid()), role: fc.constantFrom('server', 'client', 'other') }, { requiredKeys: ['kind'] }),
  fc.record({ kind: fc.constant('raft'), message: messageArb }),
  fc.record({ kind: fc.constant('request'), id: fc.oneof(fc.nat(), fc.double()), method: fc.string(), payload: fc.anything() }, { requiredKeys: ['kind'] }),
  fc.record({ kind: fc.constantFrom('response', 'error', 'refuse', 'nope'), id: fc.nat(), payload: fc.anything(), message: fc.string(), code: fc.option(fc.string()), reason: fc.string() }, { requiredKeys: ['kind'] }),
  fc.anything(),
);

t.test('garbage bytes in arbitrary chunks: frames or a WireError, nothing else', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), fc.array(fc.nat(), { maxLength: 8 }), (bytes, cuts) => {
    feed(chunked(bytes, cuts));
  }), { numRuns: RUNS });
  t.pass(`${RUNS} garbage streams`);
});

t.test('length prefixes up to 4 GiB are refused before any allocation', async (t) => {
  fc.assert(fc.property(fc.integer({ min: FRAME_BYTES_MAX + 1, max: 0xffff_ffff }), fc.uint8Array({ maxLength: 64 }), (length, tail) => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(length, 0);
    const decoder = new FrameDecoder();
    decoder.push(header);
    decoder.push(tail);
    let code: string | null = null;
    try {
      decoder.next();
    } catch (error) {
      if (!isWireError(error)) throw error;
      code = (error as WireError).code;
    }
    if (code !== 'ERR_FRAME_TOO_LARGE') throw new Error(`length ${length}: ${String(code)}`);
  }), { numRuns: RUNS });
  t.pass('every oversized prefix gave ERR_FRAME_TOO_LARGE');
});

t.test('msgpack of any shape (wrong types, uint64 above 2^53, unknown kinds): a valid envelope or ERR_FRAME_*', async (t) => {
  const codes: Record<string, number> = {};
  fc.assert(fc.property(envelopeValueArb, fc.boolean(), (value, loose) => {
    let body: Uint8Array;
    try {
      body = loose ? loosePackr.pack(value) : new Packr({ useRecords: false }).pack(value);
    } catch {
      return; // msgpackr cannot write this value: not a case
    }
    if (body.length === 0) return;
    try {
      const envelope = decodeBody(body);
      codes['valid'] = (codes['valid'] ?? 0) + 1;
      // A valid envelope re-encodes and decodes to itself.
      const again = decodeBody(encodeFrame(envelope).subarray(4));
      if (JSON.stringify(again, replacer) !== JSON.stringify(envelope, replacer)) throw new Error('round trip changed the envelope');
    } catch (error) {
      if (!isWireError(error)) throw error;
      const code = (error as WireError).code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
  }), { numRuns: RUNS * 2 });
  figures['envelopeOutcomes'] = codes;
  t.ok((codes['valid'] ?? 0) > 0 && (codes['ERR_FRAME_INVALID'] ?? 0) > 0, `both outcomes seen: ${JSON.stringify(codes)}`);
});

t.test('valid frames survive any chunking; truncated ones end with ERR_FRAME_TRUNCATED', async (t) => {
  fc.assert(fc.property(fc.array(fc.record({ kind: fc.constant('request' as const), id: fc.nat(), method: fc.stringMatching(/^[A-Za-z.]{1,20}$/), payload: fc.jsonValue() }), { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 10 }), fc.nat(), (envelopes, cuts, cut) => {
    const frames: Buffer[] = [];
    for (const envelope of envelopes) {
      try {
        frames.push(encodeFrame(validateEnvelope(envelope)));
      } catch (error) {
        if (!isWireError(error)) throw error;
      }
    }
    if (frames.length === 0) return;
    const stream = Buffer.concat(frames);
    const whole = feed(chunked(stream, cuts));
    if (whole.wireError !== null || whole.frames !== frames.length) throw new Error(`whole stream: ${JSON.stringify(whole)}`);
    // Cut inside the last frame (cutting it whole would leave a clean boundary).
    const lastLength = (frames[frames.length - 1] as Buffer).length;
    const shortBy = 1 + (cut % (lastLength - 1));
    const truncated = feed(chunked(stream.subarray(0, stream.length - shortBy), cuts));
    if (truncated.wireError !== 'ERR_FRAME_TRUNCATED') throw new Error(`truncated stream: ${JSON.stringify(truncated)}`);
  }), { numRuns: RUNS });
  t.pass('round trips and truncations');
});

function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}
