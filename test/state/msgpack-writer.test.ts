import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import {
  MsgpackWriter, UINT64_BYTES, arrayHeaderBytes, bytesOrNullBytes, countBytes, mapHeaderBytes, stringBytes,
} from '../../src/state/msgpack-writer.js';
import { statePackr } from '../../src/state/wire.js';

/** Writes one value with `write` into a buffer of `byteCount` bytes; the writer must fill it. */
function written(byteCount: number, write: (writer: MsgpackWriter) => void): Uint8Array {
  const bytes = new Uint8Array(byteCount);
  const writer = new MsgpackWriter(bytes);
  write(writer);
  writer.assertFull();
  return bytes;
}

const sameAsMsgpackr = (ours: Uint8Array, value: unknown): boolean => Buffer.compare(ours, statePackr.pack(value)) === 0;

t.test('every field form is byte for byte what msgpackr writes, at each size boundary', async (t) => {
  const mismatches: string[] = [];
  const characters = ['a', '\u00e9', '\u4e2d', '\u{1f600}'];
  for (const length of [0, 1, 31, 32, 33, 85, 86, 255, 256, 21_845, 21_846, 65_535, 65_536, 70_000]) {
    for (const character of characters) {
      const text = character.repeat(Math.ceil(length / character.length)).slice(0, length);
      if (!sameAsMsgpackr(written(stringBytes(text), (w) => w.string(text)), text)) mismatches.push(`string ${character} × ${length}`);
    }
    const bytes = new Uint8Array(length).fill(length & 0xff);
    if (!sameAsMsgpackr(written(bytesOrNullBytes(bytes), (w) => w.bytesOrNull(bytes)), bytes)) mismatches.push(`bytes ${length}`);
  }
  if (!sameAsMsgpackr(written(bytesOrNullBytes(null), (w) => w.bytesOrNull(null)), null)) mismatches.push('null');
  for (const count of [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
    if (!sameAsMsgpackr(written(countBytes(count), (w) => w.count(count)), count)) mismatches.push(`count ${count}`);
    if (count <= 100_000) {
      const items = new Array<number>(count).fill(0);
      const header = written(arrayHeaderBytes(count), (w) => w.arrayHeader(count));
      if (!sameAsMsgpackr(Buffer.concat([header, new Uint8Array(count)]), items)) mismatches.push(`array of ${count}`);
    }
    if (count <= 70_000) {
      // Keys k0..k(n-1), each value 0: the header, then each pair as msgpackr writes it.
      const object = Object.fromEntries(Array.from({ length: count }, (_, i) => [`k${i}`, 0]));
      const header = written(mapHeaderBytes(count), (w) => w.mapHeader(count));
      const pairs = Object.keys(object).map((key) => written(stringBytes(key) + 1, (w) => { w.string(key); w.count(0); }));
      if (!sameAsMsgpackr(Buffer.concat([header, ...pairs]), object)) mismatches.push(`map of ${count}`);
    }
  }
  for (const flags of [0n, 1n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 16210313421097356768n, 2n ** 64n - 1n]) {
    if (!sameAsMsgpackr(written(UINT64_BYTES, (w) => w.uint64(flags)), flags)) mismatches.push(`uint64 ${flags}`);
  }
  t.same(mismatches, []);
});

t.test('random rows are byte for byte what msgpackr writes for the same arrays', async (t) => {
  const prng = new Prng(51n);
  let mismatches = 0;
  for (let i = 0; i < 2000; i++) {
    const row = [
      `key/${'x'.repeat(prng.nextInt(40))}${prng.pick(['', '\u00e9', '\u{1f600}'])}`,
      prng.chance(0.1) ? null : new Uint8Array(prng.pick([0, 1, 100, 300, 70_000])).fill(prng.nextInt(256)),
      prng.pick([0n, 5n, 2n ** 63n + 7n]),
      prng.nextInt(300), prng.chance(0.5) ? '' : 'a1b2c3d4-0000-4000-8000-000000000000',
      prng.nextInt(2 ** 31), prng.chance(0.1) ? 2 ** 40 + prng.nextInt(1000) : prng.nextInt(70_000),
    ] as const;
    const [key, value, flags, lockIndex, session, createIndex, modifyIndex] = row;
    const byteCount = 1 + stringBytes(key) + bytesOrNullBytes(value) + UINT64_BYTES + countBytes(lockIndex) + stringBytes(session)
      + countBytes(createIndex) + countBytes(modifyIndex);
    const ours = written(byteCount, (w) => {
      w.arrayHeader(7);
      w.string(key);
      w.bytesOrNull(value);
      w.uint64(flags);
      w.count(lockIndex);
      w.string(session);
      w.count(createIndex);
      w.count(modifyIndex);
    });
    if (!sameAsMsgpackr(ours, row)) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('the writer refuses to overrun its buffer, to stop short, or a value out of range', async (t) => {
  t.throws(() => written(3, (w) => w.string('four')), AssertionError, 'overrun');
  t.throws(() => written(9, (w) => w.count(1)), AssertionError, 'not full');
  t.throws(() => written(9, (w) => w.uint64(-1n)), AssertionError, 'negative uint64');
  t.throws(() => written(9, (w) => w.uint64(2n ** 64n)), AssertionError, 'uint64 overflow');
  t.throws(() => written(9, (w) => w.count(-1)), AssertionError, 'negative count');
  t.throws(() => written(9, (w) => w.count(0.5)), AssertionError, 'fractional count');
});
