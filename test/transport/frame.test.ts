import t from 'tap';
import { Packr } from 'msgpackr';
import { Prng } from '../../src/lib/prng.js';
import type { Envelope } from '../../src/transport/envelope.js';
import { FrameDecoder, decodeBody, encodeFrame } from '../../src/transport/frame.js';
import { FRAME_BYTES_MAX, HANDSHAKE_FRAME_BYTES_MAX } from '../../src/transport/limits.js';
import { WireError } from '../../src/transport/wire-error.js';
import { appendEntries, heartbeat, installSnapshot, normalize } from './helpers.js';

const plain = new Packr({ useRecords: false, int64AsType: 'number' });
/** An encoder that writes msgpackr's extension types (Set, Error, ...), as a hostile peer might. */
const rich = new Packr({ useRecords: false, moreTypes: true });

function sampleEnvelopes(prng: Prng): Envelope[] {
  return [
    { kind: 'hello', protocolVersion: 1, datacenter: 'dc1', clusterId: null, serverId: 's1', role: 'server' },
    { kind: 'raft', message: heartbeat('s1', 's2', 7) },
    { kind: 'raft', message: appendEntries('s1', 's2', 10, 20, prng) },
    { kind: 'raft', message: installSnapshot('s1', 's2', 100_000) },
    { kind: 'request', id: 1, method: 'KVS.Apply', payload: { key: 'a/b', value: new Uint8Array([1, 2, 3]), flags: 2 ** 40 } },
    { kind: 'response', id: 1, payload: [true, null, 'x', -1.5, { nested: [1, 2, 3] }] },
    { kind: 'error', id: 2, message: 'No cluster leader', code: 'ERR_NO_LEADER' },
    { kind: 'refuse', reason: 'peer is in datacenter dc2, we are in dc1' },
  ];
}

/** Feeds `bytes` in random pieces (including empty and 1-byte ones) and collects every frame. */
function decodeInPieces(bytes: Buffer, prng: Prng): Envelope[] {
  const decoder = new FrameDecoder();
  const out: Envelope[] = [];
  let position = 0;
  while (position < bytes.length) {
    const size = prng.chance(0.2) ? prng.nextInt(3) : prng.between(1, 70_000);
    decoder.push(bytes.subarray(position, position + size));
    position += size;
    for (let envelope = decoder.next(); envelope !== null; envelope = decoder.next()) out.push(envelope);
  }
  decoder.end();
  if (decoder.bufferedBytes !== 0) throw new Error('bytes left over after the last frame');
  return out;
}

/** The WireError code `run` throws, 'no error', or the name of anything else it throws. */
function wireErrorCode(run: () => unknown): string {
  try {
    run();
    return 'no error';
  } catch (error) {
    return error instanceof WireError ? error.code : `not a WireError: ${String(error)}`;
  }
}

t.test('frames round-trip through random chunk splits', async (t) => {
  for (let seed = 1; seed <= 25; seed++) {
    const prng = new Prng(seed);
    const envelopes = sampleEnvelopes(prng);
    const stream = Buffer.concat(envelopes.map((envelope) => encodeFrame(envelope)));
    const decoded = decodeInPieces(stream, prng);
    t.same(normalize(decoded), normalize(envelopes), `seed=${seed}`);
  }
  const [, , entriesFrame] = decodeInPieces(Buffer.concat(sampleEnvelopes(new Prng(1)).map((e) => encodeFrame(e))), new Prng(2));
  t.ok(entriesFrame?.kind === 'raft' && entriesFrame.message.type === 'AppendEntries' && entriesFrame.message.entries[1]?.data instanceof Uint8Array, 'entry data arrives as bytes');
});

t.test('a decoded bin owns its bytes: it does not alias the receive buffer', async (t) => {
  const frame = encodeFrame({ kind: 'raft', message: installSnapshot('s1', 's2', 64) });
  const decoder = new FrameDecoder();
  decoder.push(frame);
  const envelope = decoder.next();
  t.ok(envelope?.kind === 'raft' && envelope.message.type === 'InstallSnapshot');
  frame.fill(0);
  if (envelope?.kind === 'raft' && envelope.message.type === 'InstallSnapshot') t.equal(envelope.message.chunk[5], 5);
});

t.test('a 4 GiB length prefix is refused from the prefix alone, without allocating', async (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const decoder = new FrameDecoder();
  decoder.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  t.equal(wireErrorCode(() => decoder.next()), 'ERR_FRAME_TOO_LARGE');
  t.ok(process.memoryUsage().arrayBuffers - before < 1024 * 1024, 'no large buffer was allocated');
  const justOver = new FrameDecoder();
  justOver.push(Buffer.from([0x01, 0x00, 0x00, 0x01])); // FRAME_BYTES_MAX + 1
  t.equal(FRAME_BYTES_MAX + 1, 0x01000001);
  t.equal(wireErrorCode(() => justOver.next()), 'ERR_FRAME_TOO_LARGE');
});

t.test('the handshake limit applies until raised', async (t) => {
  const big: Envelope = { kind: 'response', id: 1, payload: 'x'.repeat(HANDSHAKE_FRAME_BYTES_MAX) };
  const small = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  small.push(encodeFrame(big));
  t.equal(wireErrorCode(() => small.next()), 'ERR_FRAME_TOO_LARGE');
  const raised = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
  raised.setFrameBytesMax(FRAME_BYTES_MAX);
  raised.push(encodeFrame(big));
  t.equal(raised.next()?.kind, 'response');
  t.throws(() => encodeFrame(big, HANDSHAKE_FRAME_BYTES_MAX), WireError, 'the encoder checks the limit too');
});

t.test('garbage is reported as an error, never thrown as something else', async (t) => {
  const withPrefix = (body: Uint8Array): Buffer => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    return Buffer.concat([header, body]);
  };
  const cases: [string, Uint8Array, string][] = [
    ['a string longer than the body', Buffer.from([0xd9, 0xc8, 0x41, 0x42]), 'ERR_FRAME_GARBAGE'],
    ['a truncated map', Buffer.from([0x82, 0xa1, 0x61]), 'ERR_FRAME_GARBAGE'],
    ['trailing bytes after a value', Buffer.concat([plain.pack({ kind: 'refuse', reason: 'x' }), Buffer.from([1])]), 'ERR_FRAME_GARBAGE'],
    ['an unknown extension type', Buffer.from([0xd4, 0x33, 0x00]), 'ERR_FRAME_GARBAGE'],
    ['a number, not a map', plain.pack(42), 'ERR_FRAME_INVALID'],
    ['an unknown kind', plain.pack({ kind: 'gossip' }), 'ERR_FRAME_INVALID'],
    ['a request without an id', plain.pack({ kind: 'request', method: 'x', payload: null }), 'ERR_FRAME_INVALID'],
    ['a Date in a payload', plain.pack({ kind: 'response', id: 1, payload: new Date() }), 'ERR_FRAME_INVALID'],
    ['a Set in a payload', rich.pack({ kind: 'response', id: 1, payload: new Set([1]) }), 'ERR_FRAME_INVALID'],
    ['a term above 2^53 (uint64)', plain.pack({ kind: 'raft', message: { ...heartbeat('a', 'b', 1), term: 2n ** 60n } }), 'ERR_FRAME_INVALID'],
    ['a hello for a server without an id', plain.pack({ kind: 'hello', protocolVersion: 1, datacenter: 'dc1', clusterId: null, serverId: null, role: 'server' }), 'ERR_FRAME_INVALID'],
  ];
  for (const [name, body, code] of cases) {
    const decoder = new FrameDecoder();
    decoder.push(withPrefix(body));
    t.equal(wireErrorCode(() => decoder.next()), code, name);
  }
  const empty = new FrameDecoder();
  empty.push(Buffer.alloc(4));
  t.equal(wireErrorCode(() => empty.next()), 'ERR_FRAME_GARBAGE');
  // { kind: 'response', id: 1, payload: [[[[...]]]] } nested 200,000 deep: msgpackr's recursion
  // exhausts the stack, which must surface as garbage, not as a crash.
  const deep = Buffer.concat([Buffer.from([0x83]), plain.pack('kind'), plain.pack('response'), plain.pack('id'), plain.pack(1), plain.pack('payload'), Buffer.alloc(200_000, 0x91), Buffer.from([0xc0])]);
  t.equal(wireErrorCode(() => decodeBody(deep)), 'ERR_FRAME_GARBAGE', 'nesting that exhausts the stack');
  const nested = plain.pack({ kind: 'response', id: 1, payload: JSON.parse('['.repeat(100) + ']'.repeat(100)) as unknown });
  t.equal(wireErrorCode(() => decodeBody(nested)), 'ERR_FRAME_INVALID');
  const prng = new Prng(99);
  for (let round = 0; round < 2_000; round++) {
    const noise = Buffer.from(Array.from({ length: prng.between(1, 64) }, () => prng.nextInt(256)));
    try {
      decodeBody(noise);
    } catch (error) {
      if (!(error instanceof WireError)) t.fail(`random bytes threw ${String(error)}`);
    }
  }
});

t.test('a stream that ends inside a frame is truncated', async (t) => {
  const frame = encodeFrame({ kind: 'raft', message: heartbeat('s1', 's2', 1) });
  for (const cut of [1, 3, 4, 5, frame.length - 1]) {
    const decoder = new FrameDecoder();
    decoder.push(frame.subarray(0, cut));
    t.equal(decoder.next(), null, `incomplete after ${cut} bytes`);
    t.equal(wireErrorCode(() => decoder.end()), 'ERR_FRAME_TRUNCATED');
  }
  const whole = new FrameDecoder();
  whole.push(frame);
  t.ok(whole.next() !== null);
  t.doesNotThrow(() => whole.end(), 'a clean end is fine');
});

t.test('a frame dripped one byte at a time decodes and stays compact', async (t) => {
  const envelope: Envelope = { kind: 'raft', message: installSnapshot('s1', 's2', 50_000) };
  const frame = encodeFrame(envelope);
  const decoder = new FrameDecoder();
  let decoded: Envelope | null = null;
  for (let position = 0; position < frame.length; position++) {
    decoder.push(frame.subarray(position, position + 1));
    decoded = decoder.next() ?? decoded;
  }
  t.same(normalize(decoded), normalize(envelope));
});
