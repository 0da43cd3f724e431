/**
 * An HDR-style latency histogram in whole microseconds: exact below 256 µs, then 128
 * sub-buckets per power of two, so any reported percentile is within 1/128 (0.8 %) of the true
 * sample. Fixed memory (3,200 counters) whatever the run length, unlike a sample array that
 * grows with throughput, and two histograms merge by adding counters.
 */

/** Sub-buckets per octave as a power of two: 2^7 = 128 gives ≤ 0.8 % relative error. */
const SUB_BUCKET_BITS = 7;
const SUB_BUCKET_COUNT = 1 << SUB_BUCKET_BITS;
/** Values below this are their own bucket (exact). */
const EXACT_LIMIT = SUB_BUCKET_COUNT * 2;
/** Largest recordable value, ~35 minutes: a 32-bit count of microseconds, clamped above. */
export const LATENCY_US_MAX = 2 ** 31 - 1;
const BUCKET_COUNT = bucketIndex(LATENCY_US_MAX) + 1;

/** Percentiles in milliseconds, rounded to the microsecond. */
export interface LatencySummary {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function bucketIndex(valueUs: number): number {
  if (valueUs < EXACT_LIMIT) return valueUs;
  const highestBit = 31 - Math.clz32(valueUs);
  const shift = highestBit - SUB_BUCKET_BITS;
  const mantissa = valueUs >>> shift; // in [128, 255]
  return EXACT_LIMIT + (shift - 1) * SUB_BUCKET_COUNT + (mantissa - SUB_BUCKET_COUNT);
}

/** Highest value that falls into a bucket: HDR's "highest equivalent value", never under-reports. */
function bucketHighestUs(index: number): number {
  if (index < EXACT_LIMIT) return index;
  const offset = index - EXACT_LIMIT;
  const shift = Math.floor(offset / SUB_BUCKET_COUNT) + 1;
  const mantissa = (offset % SUB_BUCKET_COUNT) + SUB_BUCKET_COUNT;
  return (mantissa + 1) * 2 ** shift - 1;
}

/** Log-linear histogram of latencies; record in milliseconds, read percentiles in milliseconds. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKET_COUNT);
  #count = 0;
  #sumUs = 0;
  #maxUs = 0;

  /** Records one latency given in milliseconds (fractional, e.g. from performance.now()). */
  recordMs(latencyMs: number): void {
    if (!Number.isFinite(latencyMs)) throw new Error(`latency is not finite: ${latencyMs}`);
    const valueUs = Math.min(LATENCY_US_MAX, Math.max(0, Math.round(latencyMs * 1000)));
    const index = bucketIndex(valueUs);
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count++;
    this.#sumUs += valueUs;
    if (valueUs > this.#maxUs) this.#maxUs = valueUs;
  }

  /** Adds every sample of another histogram to this one. */
  merge(other: LatencyHistogram): void {
    for (let index = 0; index < BUCKET_COUNT; index++) {
      this.#counts[index] = (this.#counts[index] ?? 0) + (other.#counts[index] ?? 0);
    }
    this.#count += other.#count;
    this.#sumUs += other.#sumUs;
    this.#maxUs = Math.max(this.#maxUs, other.#maxUs);
  }

  get count(): number {
    return this.#count;
  }

  /** The latency under which `percent` % of the samples fall, in ms; 0 when empty. */
  percentileMs(percent: number): number {
    if (!(percent > 0 && percent <= 100)) throw new Error(`percentile out of range: ${percent}`);
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((percent / 100) * this.#count));
    let seen = 0;
    for (let index = 0; index < BUCKET_COUNT; index++) {
      seen += this.#counts[index] ?? 0;
      if (seen >= rank) return Math.min(bucketHighestUs(index), this.#maxUs) / 1000;
    }
    return this.#maxUs / 1000;
  }

  /** Mean, p50, p90, p99 and max, in ms. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      meanMs: this.#count === 0 ? 0 : Math.round(this.#sumUs / this.#count) / 1000,
      p50Ms: this.percentileMs(50),
      p90Ms: this.percentileMs(90),
      p99Ms: this.percentileMs(99),
      maxMs: this.#maxUs / 1000,
    };
  }
}
