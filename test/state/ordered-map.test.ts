import t from 'tap';
import { AssertionError } from '../../src/lib/assert.js';
import { Prng } from '../../src/lib/prng.js';
import { OrderedMap, compareKeys, isWellFormed } from '../../src/state/ordered-map.js';

const utf8 = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Characters from every UTF-8 length class, including the ones where UTF-16 order differs. */
const ALPHABET = ['a', 'b', '/', 'z', '\u00e9', '\u4e2d', '\ue000', '\uffff', '\ufffd', '\u{1f600}', '\u{10000}', '\u{10ffff}'];

function randomKey(prng: Prng, lengthMax: number): string {
  let key = '';
  const length = prng.between(0, lengthMax);
  for (let i = 0; i < length; i++) key += prng.pick(ALPHABET);
  return key;
}

t.test('compareKeys is UTF-8 byte order, not UTF-16 order', async (t) => {
  // U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80) in UTF-8; JS < says the opposite.
  t.ok('\u{1f600}' < '\ufffd', 'JS string order puts the astral character first');
  t.ok(compareKeys('\ufffd', '\u{1f600}') < 0, 'UTF-8 order puts U+FFFD first');
  t.ok(compareKeys('a', 'ab') < 0);
  t.equal(compareKeys('x', 'x'), 0);
  const prng = new Prng(1n);
  const disagreements: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const a = randomKey(prng, 4);
    const b = randomKey(prng, 4);
    if (Math.sign(compareKeys(a, b)) !== Math.sign(Buffer.compare(utf8(a), utf8(b)))) disagreements.push(`${a} vs ${b}`);
  }
  t.same(disagreements, [], 'agrees with Buffer.compare of the UTF-8 bytes');
});

t.test('isWellFormed rejects lone surrogates only', async (t) => {
  t.ok(isWellFormed('a\u{1f600}b'));
  t.notOk(isWellFormed('a\ud83d'));
  t.notOk(isWellFormed('\ude00x'));
});

t.test('random operations match a reference map, in UTF-8 order', async (t) => {
  for (const seed of [1n, 2n, 3n]) {
    const prng = new Prng(seed);
    const map = new OrderedMap<number>();
    const reference = new Map<string, number>();
    for (let step = 0; step < 20_000; step++) {
      const key = randomKey(prng, 3);
      if (prng.chance(0.6)) {
        map.set(key, step);
        reference.set(key, step);
      } else if (map.delete(key) !== reference.delete(key)) {
        t.fail(`delete ${key} disagrees at step ${step}`);
      }
      if (step % 997 === 0) {
        const expected = [...reference.entries()].sort((a, b) => Buffer.compare(utf8(a[0]), utf8(b[0])));
        t.same([...map.entries()], expected, `seed ${seed} step ${step}`);
        const prefix = randomKey(prng, 2);
        t.same([...map.entriesWithPrefix(prefix)], expected.filter(([k]) => utf8(k).subarray(0, utf8(prefix).length).equals(utf8(prefix))));
      }
      if (map.size !== reference.size) t.fail(`size disagrees at step ${step}`);
      if (step % 4999 === 0) map.assertInvariants();
    }
    map.assertInvariants();
    for (const key of [...reference.keys()]) map.delete(key);
    t.equal(map.size, 0);
    t.same([...map.entries()], []);
  }
});

t.test('a capture reads the map as it was, through any writes since, until released', async (t) => {
  const prng = new Prng(9n);
  for (let round = 0; round < 20; round++) {
    const map = new OrderedMap<number>();
    for (let i = 0; i < prng.between(0, 400); i++) map.set(randomKey(prng, 3), i);
    const then = [...map.entries()];
    const capture = map.capture();
    const second = prng.chance(0.5) ? map.capture() : null;
    t.equal(map.liveCaptures, second === null ? 1 : 2);
    // Overwrites, deletes, re-inserts after deletes, new keys, the odd clear.
    for (let i = 0; i < 600; i++) {
      const key = prng.chance(0.5) && then.length > 0 ? (prng.pick(then) as [string, number])[0] : randomKey(prng, 3);
      if (prng.chance(0.3)) map.delete(key);
      else map.set(key, 10_000 + i);
      if (prng.chance(0.002)) map.clear();
    }
    t.same(capture.keys, then.map(([key]) => key), `round ${round}: the keys then, in order`);
    t.same(capture.keys.map((_, k) => capture.valueAt(k)), then.map(([, value]) => value), `round ${round}: the values then`);
    capture.release();
    capture.release();
    if (second !== null) {
      t.same(second.keys.map((_, k) => second.valueAt(k)), then.map(([, value]) => value), `round ${round}: a second capture alike`);
      second.release();
    }
    t.equal(map.liveCaptures, 0, 'released: writes note nothing any more');
    map.assertInvariants();
  }
});

t.test('isWellFormed agrees with the \\p{Cs} regex it replaced', async (t) => {
  const prng = new Prng(11n);
  const units = [0x61, 0x2f, 0xe9, 0x4e2d, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xfffd, 0xffff];
  let disagreements = 0;
  for (let i = 0; i < 20_000; i++) {
    const text = String.fromCharCode(...Array.from({ length: prng.between(0, 6) }, () => prng.pick(units)));
    if (isWellFormed(text) !== !/\p{Cs}/u.test(text)) disagreements++;
  }
  t.equal(disagreements, 0);
});

/** Sorted unique random keys, from every UTF-8 length class (so UTF-8 order matters). */
function sortedRandomKeys(prng: Prng, count: number): string[] {
  const keys = new Set<string>();
  while (keys.size < count) keys.add(`${randomKey(prng, 3)}/${prng.nextInt(count * 4)}`);
  return [...keys].sort(compareKeys);
}

t.test('fromSorted builds the same map as inserting the keys one by one, and a valid tree', async (t) => {
  const prng = new Prng(21n);
  // Sizes around node boundaries (64 per node, 4096 per two levels), then random ones.
  const sizes = [0, 1, 2, 31, 32, 33, 63, 64, 65, 127, 128, 129, 2080, 4095, 4096, 4097, 64 * 64 * 2 + 1];
  for (let i = 0; i < 12; i++) sizes.push(prng.between(0, 30_000));
  for (const size of sizes) {
    const keys = sortedRandomKeys(prng, size);
    const values = keys.map((_, i) => i * 7);
    const bulk = OrderedMap.fromSorted(keys, values);
    const inserted = new OrderedMap<number>();
    for (const i of prng.shuffle(keys.map((_, i) => i))) inserted.set(keys[i] as string, values[i] as number);
    bulk.assertInvariants();
    inserted.assertInvariants();
    t.equal(bulk.size, size);
    t.same([...bulk.entries()], [...inserted.entries()], `${size} keys: same entries in the same order`);
    t.same(inserted.valuesInKeyOrder(), [...inserted.entries()].map((entry) => entry[1]), `${size} keys: valuesInKeyOrder`);
    const prefix = randomKey(prng, 1);
    const low = keys.length === 0 ? '' : (prng.pick(keys)).slice(0, 2);
    t.same([...bulk.entriesWithPrefix(prefix)], [...inserted.entriesWithPrefix(prefix)], `${size} keys: prefix ${prefix}`);
    t.same([...bulk.entriesFrom(low)].slice(0, 100), [...inserted.entriesFrom(low)].slice(0, 100), `${size} keys: from ${low}`);
    for (const key of keys.slice(0, 50)) if (bulk.get(key) !== inserted.get(key)) t.fail(`get ${key}`);
  }
});

t.test('a bulk-loaded map takes random writes and deletes like any other', async (t) => {
  for (const seed of [31n, 32n, 33n]) {
    const prng = new Prng(seed);
    const keys = sortedRandomKeys(prng, prng.between(1000, 20_000));
    const map = OrderedMap.fromSorted(keys, keys.map((_, i) => i));
    const reference = new Map(keys.map((key, i) => [key, i]));
    for (let step = 0; step < 30_000; step++) {
      // Deletes of existing keys (so nodes underflow and merge) as often as inserts of new ones.
      const key = prng.chance(0.5) ? prng.pick(keys) : `${randomKey(prng, 3)}/${prng.nextInt(100_000)}`;
      if (prng.chance(0.5)) {
        map.set(key, step);
        reference.set(key, step);
      } else if (map.delete(key) !== reference.delete(key)) {
        t.fail(`seed ${seed}: delete ${key} disagrees at step ${step}`);
      }
      if (step % 7919 === 0) map.assertInvariants();
    }
    map.assertInvariants();
    const expected = [...reference.entries()].sort((a, b) => compareKeys(a[0], b[0]));
    t.same([...map.entries()], expected, `seed ${seed}: same entries as the reference`);
    t.same(map.valuesInKeyOrder(), expected.map((entry) => entry[1]), `seed ${seed}: valuesInKeyOrder`);
  }
});

t.test('fromSorted refuses keys out of order, duplicated, or without a value each', async (t) => {
  t.throws(() => OrderedMap.fromSorted(['b', 'a'], [1, 2]), AssertionError);
  t.throws(() => OrderedMap.fromSorted(['a', 'a'], [1, 2]), AssertionError);
  // UTF-8 order, not UTF-16: U+FFFD sorts before U+1F600.
  t.throws(() => OrderedMap.fromSorted(['\u{1f600}', '\ufffd'], [1, 2]), AssertionError);
  t.doesNotThrow(() => OrderedMap.fromSorted(['\ufffd', '\u{1f600}'], [1, 2]));
  t.throws(() => OrderedMap.fromSorted(['a'], []), AssertionError);
});

t.test('get and has', async (t) => {
  const map = new OrderedMap<string>();
  map.set('k', 'v1');
  map.set('k', 'v2');
  t.equal(map.get('k'), 'v2');
  t.ok(map.has('k'));
  t.notOk(map.has('j'));
  t.equal(map.size, 1);
  map.clear();
  t.equal(map.size, 0);
  t.equal(map.get('k'), undefined);
});

t.test('100k keys: insert, prefix list and delete are not quadratic', async (t) => {
  const map = new OrderedMap<number>();
  const keys: string[] = [];
  for (let i = 0; i < 100_000; i++) keys.push(`docker/swarm/nodes/10.0.${i % 256}.${i}:2375`);
  new Prng(9n).shuffle(keys);
  const started = performance.now();
  keys.forEach((key, i) => map.set(key, i));
  t.equal(map.size, 100_000);
  map.assertInvariants();
  const prefix = 'docker/swarm/nodes/10.0.7.';
  t.equal([...map.entriesWithPrefix(prefix)].length, keys.filter((key) => key.startsWith(prefix)).length);
  // Delete half (in random order): deep branch borrows and merges, then check the order.
  const [gone, kept] = [keys.slice(0, 50_000), keys.slice(50_000)];
  for (const key of gone) map.delete(key);
  map.assertInvariants();
  const order = [...map.entries()].map(([key]) => key);
  t.same(order, [...kept].sort(compareKeys), 'iteration order after 50k deletes');
  t.equal(map.get(kept[0] as string) !== undefined && map.get(gone[0] as string) === undefined, true);
  for (const key of kept) map.delete(key);
  t.equal(map.size, 0);
  t.same([...map.entries()], []);
  map.assertInvariants();
  t.comment(`100k insert + list + delete took ${Math.round(performance.now() - started)} ms`);
});
