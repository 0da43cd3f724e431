import t from 'tap';
import { crc32 } from '../../../src/lib/crc32.js';

const encoder = new TextEncoder();

t.test('matches the standard CRC-32 check values', async (t) => {
  t.equal(crc32(new Uint8Array()), 0);
  t.equal(crc32(encoder.encode('123456789')), 0xcbf43926, 'the catalogue check value of CRC-32/ISO-HDLC');
  t.equal(crc32(encoder.encode('The quick brown fox jumps over the lazy dog')), 0x414fa339);
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
