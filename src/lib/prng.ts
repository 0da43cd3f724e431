import { assert } from './assert.js';

/**
 * A seeded pseudo-random generator (xoshiro128**). Everything random in the Raft core and the
 * simulation comes from one of these, so a seed replays a run exactly.
 */
export class Prng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(seed: bigint | number) {
    // splitmix64 expands the seed into four 32-bit words of state.
    let x = BigInt.asUintN(64, BigInt(seed));
    const words: number[] = [];
    for (let i = 0; i < 2; i++) {
      x = BigInt.asUintN(64, x + 0x9e3779b97f4a7c15n);
      let z = x;
      z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
      z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
      z = z ^ (z >> 31n);
      words.push(Number(z & 0xffffffffn), Number(z >> 32n));
    }
    this.#s0 = words[0] ?? 1;
    this.#s1 = words[1] ?? 2;
    this.#s2 = words[2] ?? 3;
    this.#s3 = words[3] ?? 4;
    if ((this.#s0 | this.#s1 | this.#s2 | this.#s3) === 0) this.#s0 = 1;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** A float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, bound). */
  nextInt(bound: number): number {
    assert(Number.isSafeInteger(bound), 'bound must be an integer');
    assert(bound > 0, 'bound must be positive');
    return Math.floor(this.nextFloat() * bound);
  }

  /** An integer in [low, high] inclusive. */
  between(low: number, high: number): number {
    assert(high >= low, 'empty range');
    return low + this.nextInt(high - low + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.nextFloat() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'cannot pick from an empty array');
    return items[this.nextInt(items.length)] as T;
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A new generator whose sequence depends on this one's, for independent sub-streams. */
  fork(): Prng {
    return new Prng((BigInt(this.nextUint32()) << 32n) | BigInt(this.nextUint32()));
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
