import { assert } from '../lib/assert.js';

/** Uniform floats in [0, 1): Math.random in production, `() => prng.nextFloat()` in tests. */
export type RandomSource = () => number;

/**
 * Delay before reconnect attempt `attempt` (1 for the first retry): exponential from `minMs`,
 * capped at `maxMs`, with "equal jitter": half the step fixed, half random. The fixed half keeps
 * a dead peer from being redialled in a tight loop; the random half keeps the servers of a
 * cluster that lost the same peer from redialling in lockstep.
 */
export function backoffDelayMs(attempt: number, random: RandomSource, minMs: number, maxMs: number): number {
  assert(Number.isSafeInteger(attempt) && attempt >= 1, 'attempts count from 1');
  assert(minMs > 0 && minMs <= maxMs, 'backoff bounds out of order');
  const exponent = Math.min(attempt - 1, 30); // 2^30 × min is far past any max: no overflow
  const stepMs = Math.min(maxMs, minMs * 2 ** exponent);
  const fraction = random();
  assert(fraction >= 0 && fraction < 1, 'random source must return [0, 1)');
  const delayMs = Math.round(stepMs / 2 + (fraction * stepMs) / 2);
  assert(delayMs >= 0 && delayMs <= maxMs, 'backoff delay out of bounds');
  return delayMs;
}
