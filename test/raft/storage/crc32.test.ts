import t from 'tap';
import { crc32, crc32Portable } from '../../../src/lib/crc32.js';
import { Prng } from '../../../src/lib/prng.js';

const encoder = new TextEncoder();

t.test('matches the standard CRC-32 check values', async (t) => {
  t.equal(crc32(new Uint8Array()), 0);
  t.equal(crc32(encoder.encode('123456789')), 0xcbf43926, 'the catalogue check value of CRC-32/ISO-HDLC');
  t.equal(crc32(encoder.encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

t.test('the portable table gives the standard check values too', async (t) => {
  t.equal(crc32Portable(new Uint8Array()), 0);
  t.equal(crc32Portable(encoder.encode('123456789')), 0xcbf43926);
  t.equal(crc32Portable(encoder.encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
});

t.test('zlib and the portable table agree on random buffers, offsets and chains', async (t) => {
  // Files written with the table implementation must stay readable: the same function, exactly.
  const prng = new Prng(7n);
  let disagreements = 0;
  for (let round = 0; round < 500; round++) {
    const backing = new Uint8Array(prng.between(0, 4096) + 16);
    for (let i = 0; i < backing.length; i++) backing[i] = prng.nextInt(256);
    const start = prng.between(0, 15);
    const bytes = backing.subarray(start, prng.between(start, backing.length)); // a view, at an odd offset
    const previous = prng.chance(0.5) ? 0 : prng.nextInt(0x1_0000_0000);
    if (crc32(bytes, previous) !== crc32Portable(bytes, previous)) disagreements++;
    const cut = prng.between(0, bytes.length);
    if (crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut))) !== crc32Portable(bytes)) disagreements++;
  }
  t.equal(disagreements, 0);
  t.equal(crc32(new Uint8Array(0), 0xffffffff), 0xffffffff, 'an empty piece continues unchanged');
});

t.test('continues over pieces', async (t) => {
  const whole = encoder.encode('hello, durable world');
  t.equal(crc32(whole.subarray(7), crc32(whole.subarray(0, 7))), crc32(whole));
});

t.test('every single-bit flip changes the value', async (t) => {
  const bytes = encoder.encode('a record value');
  const original = crc32(bytes);
  let unchanged = 0;
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const copy = new Uint8Array(bytes);
    copy[bit >> 3] = (copy[bit >> 3] ?? 0) ^ (1 << (bit & 7));
    if (crc32(copy) === original) unchanged++;
  }
  t.equal(unchanged, 0);
});
