import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import { MsgpackReader } from '../../src/state/msgpack-reader.js';
import {
  expectBytesViewOrNull, expectCount, expectString, expectUint64, statePackr, stateUnpackr,
} from '../../src/state/wire.js';

/** What `read` returns, or the AssertionError's message; anything else thrown fails the test. */
function outcome<T>(read: () => T, isRefusal: (error: unknown) => boolean = (error) => error instanceof AssertionError): { value: T } | { error: string } {
  try {
    return { value: read() };
  } catch (error) {
    if (!isRefusal(error)) throw error;
    return { error: String(error) };
  }
}

/** MessagePack of one value in a form msgpackr would not choose itself (other integer and float widths). */
function rawNumber(prng: Prng): Uint8Array {
  const view = new DataView(new ArrayBuffer(9));
  const choice = prng.nextInt(9);
  const bytes = (type: number, width: number): Uint8Array => {
    view.setUint8(0, type);
    return new Uint8Array(view.buffer.slice(0, 1 + width));
  };
  switch (choice) {
    case 0: view.setInt8(1, prng.between(-128, 127)); return bytes(0xd0, 1);
    case 1: view.setInt16(1, prng.between(-32768, 32767)); return bytes(0xd1, 2);
    case 2: view.setInt32(1, prng.between(-(2 ** 31), 2 ** 31 - 1)); return bytes(0xd2, 4);
    case 3: view.setFloat32(1, prng.chance(0.5) ? prng.nextInt(1 << 24) : prng.nextFloat() * 1000); return bytes(0xca, 4);
    case 4: view.setFloat64(1, prng.pick([2 ** 53, 2 ** 53 - 1, -1, 0.5, 1e300, Number.NaN, prng.nextInt(2 ** 40)])); return bytes(0xcb, 8);
    case 5: view.setBigInt64(1, -BigInt(prng.nextUint32()) - 1n); return bytes(0xd3, 8);
    case 6: view.setBigInt64(1, BigInt(prng.nextUint32())); return bytes(0xd3, 8);
    case 7: view.setBigUint64(1, prng.chance(0.3) ? 0n : (BigInt(prng.nextUint32()) << 32n) | BigInt(prng.nextUint32())); return bytes(0xcf, 8);
    default: return prng.chance(0.2) ? Uint8Array.of(0xa1, 0x61) : Uint8Array.of(prng.pick([0xe0, 0xff, 0xc0, 0xc2, 0xc3, 0x90, 0x80]));
  }
}

/** A random value of the kinds a snapshot holds, some of them of the wrong kind for the field. */
function randomValue(prng: Prng, depth = 0): unknown {
  switch (prng.nextInt(depth > 2 ? 8 : 10)) {
    case 0: return prng.nextInt(200);
    case 1: return prng.pick([0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -33, -129, 1.5]);
    case 2: return prng.pick([0n, 1n, 2n ** 53n + 1n, 2n ** 64n - 1n, -1n]);
    case 3: return 'x'.repeat(prng.chance(0.02) ? 70_000 : prng.pick([0, 1, 31, 32, 255, 256])) + prng.pick(['', '\u00e9', '\u{1f600}', '\u4e2d']);
    case 4: return new Uint8Array(prng.chance(0.02) ? 65_536 : prng.pick([0, 1, 255, 256])).fill(7);
    case 5: return null;
    case 6: return prng.chance(0.5);
    case 7: return prng.nextFloat();
    case 8: return Array.from({ length: prng.pick([0, 1, 15, 16, 20]) }, () => randomValue(prng, depth + 1));
    default: return Object.fromEntries(Array.from({ length: prng.pick([0, 1, 15, 16, 17]) }, (_, i) => [`k${i}`, randomValue(prng, depth + 1)]));
  }
}

/** Reads `encoded` with `read` and with msgpackr + `expect`: both must agree, to the last byte. */
function agrees<T>(encoded: Uint8Array, read: (reader: MsgpackReader) => T, expect: (value: unknown) => T): boolean {
  const reader = new MsgpackReader(encoded);
  const ours = outcome(() => read(reader));
  // msgpackr throws plain Errors (truncated input, trailing bytes); the expect* checks assert.
  const theirs = outcome(() => expect(stateUnpackr.unpack(encoded)), (error) => error instanceof Error);
  if ('error' in ours || 'error' in theirs) return 'error' in ours && 'error' in theirs;
  return reader.isAtEnd && sameValue(ours.value, theirs.value);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  return Object.is(a, b);
}

t.test('count, uint64, string and bytes read exactly what msgpackr and the expect* checks accept', async (t) => {
  const prng = new Prng(41n);
  const fields = {
    count: [(r: MsgpackReader) => r.count('f'), (v: unknown) => expectCount(v, 'f')],
    uint64: [(r: MsgpackReader) => r.uint64('f'), (v: unknown) => expectUint64(v, 'f')],
    string: [(r: MsgpackReader) => r.string('f'), (v: unknown) => expectString(v, 'f')],
    bytes: [(r: MsgpackReader) => r.bytesViewOrNull('f'), (v: unknown) => expectBytesViewOrNull(v, 'f')],
  } as const;
  for (const [name, [read, expect]] of Object.entries(fields)) {
    let disagreements = 0;
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const encoded = prng.chance(0.5) ? statePackr.pack(randomValue(prng)) : rawNumber(prng);
      // A copy: msgpackr's result is a view into its reused buffer.
      const bytes = Uint8Array.from(encoded);
      if (!agrees<unknown>(bytes, read, expect)) disagreements++;
      if (!('error' in outcome(() => read(new MsgpackReader(bytes))))) accepted++;
    }
    t.equal(disagreements, 0, `${name}: same value or both refuse`);
    t.ok(accepted > 100, `${name}: the inputs include ${accepted} valid ones`);
  }
});

t.test('a decoded zero Flags is 0n and a large one exact', async (t) => {
  t.equal(new MsgpackReader(Uint8Array.from(statePackr.pack(0n))).uint64('Flags'), 0n);
  const large = 16210313421097356768n;
  t.equal(new MsgpackReader(Uint8Array.from(statePackr.pack(large))).uint64('Flags'), large);
});

t.test('skip moves past any value, and value() decodes it like msgpackr', async (t) => {
  const prng = new Prng(42n);
  for (let i = 0; i < 500; i++) {
    const values = Array.from({ length: prng.between(1, 4) }, () => randomValue(prng));
    const pieces = values.map((value) => Uint8Array.from(statePackr.pack(value)));
    const bytes = Uint8Array.from(Buffer.concat(pieces));
    const reader = new MsgpackReader(bytes);
    const decoded = values.map(() => reader.value(stateUnpackr, 'v'));
    if (!reader.isAtEnd) t.fail('every value was read');
    // msgpackr's encoding is canonical for these types: equal bytes, equal values.
    decoded.forEach((value, k) => {
      if (Buffer.compare(statePackr.pack(value), pieces[k] as Uint8Array) !== 0) t.fail(`value ${k} decodes as msgpackr does`);
    });
    const skipper = new MsgpackReader(bytes);
    for (const piece of pieces) {
      const before = skipper.remainingBytes;
      skipper.skip('v');
      if (before - skipper.remainingBytes !== piece.byteLength) t.fail('skip moved past exactly one value');
    }
  }
  t.pass('500 sequences of values read and skipped');
});

t.test('a truncated input or a byte that is no MessagePack type asserts', async (t) => {
  const prng = new Prng(43n);
  for (let i = 0; i < 300; i++) {
    const bytes = Uint8Array.from(statePackr.pack([randomValue(prng), 'a string', new Uint8Array(5), 12345678901n]));
    const cut = prng.between(0, bytes.byteLength - 1);
    t.throws(() => new MsgpackReader(bytes.subarray(0, cut)).skip('v'), AssertionError);
  }
  t.throws(() => new MsgpackReader(Uint8Array.of(0xc1)).skip('v'), AssertionError);
  t.throws(() => new MsgpackReader(Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)).string('s'), AssertionError);
  t.throws(() => new MsgpackReader(Uint8Array.of(0x93, 1)).mapHeader('m'), AssertionError);
});
