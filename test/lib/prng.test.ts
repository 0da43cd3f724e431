import t from 'tap';
import { Prng } from '../../src/lib/prng.js';

t.test('the same seed gives the same sequence', async (t) => {
  const a = new Prng(42n);
  const b = new Prng(42n);
  const seqA = Array.from({ length: 100 }, () => a.nextUint32());
  const seqB = Array.from({ length: 100 }, () => b.nextUint32());
  t.same(seqA, seqB);
  t.not(new Prng(43n).nextUint32(), new Prng(42n).nextUint32());
});

t.test('nextInt stays in range and covers it', async (t) => {
  const prng = new Prng(7);
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const n = prng.nextInt(10);
    t.ok(n >= 0 && n < 10);
    seen.add(n);
  }
  t.equal(seen.size, 10);
});
