import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { consulTarget } from './consul-target.js';
import { etcdTarget } from './etcd-target.js';
import { nearestRank } from './failover.js';
import { round } from './measure-window.js';
import { HttpEndpoints, isRecord, keyPath, parseJson, readStamp, stampedValue, transportErrorKind } from './target.js';
import type { KvTarget } from './target.js';

/**
 * Wake-up latency of many concurrent watchers on one prefix (issue 7: "a blocking query on a
 * prefix wakes within 10 ms of the write at 1,000 concurrent watchers").
 *
 * A batch: N watchers spread over the members (watcher i on member i mod members), each on its
 * own keep-alive connection; then `writes` times: wait until every watcher is armed again, let
 * the re-armed requests settle on the servers, PUT one value under the prefix on the leader,
 * and take, for every watcher, the time from the PUT's *send* and from its *acknowledgement*
 * to the moment that watcher's answer arrived (response headers for Consul, the stream chunk
 * for etcd; JSON decoding, and a Consul watcher's next request, come after the timestamp). A watcher that has not seen the write
 * 10 s after it is counted as missed.
 *
 * - Consul (Conclave, the stand-in): `GET /v1/kv/<prefix>?recurse&index=N&wait=60s`, re-armed
 *   with the X-Consul-Index of each answer: the protocol, one request per wake-up.
 * - etcd: the streaming `/v3/watch` of etcd-target.ts (the Swarm workload's watcher), one HTTP
 *   stream per watcher: streams stay open, nothing to re-arm.
 */

/** The watched prefix and the one key written under it (the answer stays one entry long). */
export const WATCH_PREFIX = 'bench-watch/';
const WATCH_KEY = `${WATCH_PREFIX}key`;
/** What the brief asks a Consul watcher to send. */
const CONSUL_WAIT = '60s';
/** Consul's wait plus its jitter (wait/16) and slack: a blocking answer must come before this. */
const CONSUL_WATCH_TIMEOUT_MS = 90_000;
/** A watcher that has not seen a write this long after it is counted as missed. */
const WAKE_TIMEOUT_MS = 10_000;
/** How long every watcher gets to be established, and re-armed between writes. */
const ARM_TIMEOUT_MS = 30_000;
/** Initial (non-blocking) reads in flight while the Consul fleet starts. */
const START_CONCURRENCY = 64;
/** After a failed watch request, as node-consul's watch (200 ms minimum). */
const ERROR_BACKOFF_MS = 200;
export const WATCHERS_MAX = 10_000;

/** Calls back when watcher `watcher` received the value stamped `stamp` at `receivedAtMs`. */
type WakeHandler = (watcher: number, stamp: number, receivedAtMs: number) => void;

/** N watchers on one system. */
interface WatchFleet {
  readonly count: number;
  endpointOf(watcher: number): number;
  start(onWake: WakeHandler): Promise<void>;
  /** Resolves when every watcher has seen `stamp` and is waiting for the next change; false on timeout. */
  armed(stamp: number): Promise<boolean>;
  readonly errorKinds: Map<string, number>;
  stop(): Promise<void>;
}

/** Options of one batch. */
export interface WatchBatchOptions {
  readonly label: string;
  readonly protocol: 'consul' | 'etcd';
  readonly urls: readonly string[];
  /** The member the writes go to (the leader). */
  readonly writeEndpoint: number;
  /** Members whose watchers are reported as "on the leader". */
  readonly leaderEndpoint: number | null;
  readonly watchers: number;
  readonly writes: number;
  readonly valueBytes: number;
  /** Pause between "every watcher re-armed" and the write: the re-armed requests reach the servers. */
  readonly settleMs: number;
  /**
   * Consul only: watch with `&stale`, a diagnostic. A default-mode watcher on a follower asks the
   * leader for a read index when it wakes (a round trip); a stale one answers from its own state.
   */
  readonly stale?: boolean;
}

/** One write of a batch. */
export interface WatchWrite {
  readonly ackMs: number;
  readonly woken: number;
  readonly missed: number;
  /** First to last watcher's answer. */
  readonly spreadMs: number;
  readonly p99FromAckMs: number | null;
}

/** Percentiles of a set of samples in ms (nearest rank). */
export interface Percentiles {
  readonly count: number;
  readonly p50Ms: number | null;
  readonly p90Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  readonly minMs: number | null;
}

/** One batch on one system. */
export interface WatchBatchReport {
  readonly label: string;
  readonly protocol: 'consul' | 'etcd';
  readonly watchers: number;
  readonly members: number;
  readonly writes: readonly WatchWrite[];
  readonly fromSend: Percentiles;
  readonly fromAck: Percentiles;
  /** From the acknowledgement, watchers on the leader only / on the followers only. */
  readonly fromAckOnLeader: Percentiles;
  readonly fromAckOnFollowers: Percentiles;
  readonly missed: number;
  readonly errorKinds: Readonly<Record<string, number>>;
}

/** Nearest-rank percentiles of unsorted samples. */
export function percentiles(samples: readonly number[]): Percentiles {
  if (samples.length === 0) return { count: 0, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null, minMs: null };
  const sorted = Float64Array.from(samples).sort();
  const values = Array.from(sorted);
  return {
    count: values.length,
    p50Ms: round(nearestRank(values, 50)),
    p90Ms: round(nearestRank(values, 90)),
    p99Ms: round(nearestRank(values, 99)),
    maxMs: round(values[values.length - 1] ?? 0),
    minMs: round(values[0] ?? 0),
  };
}

function countError(errors: Map<string, number>, kind: string): void {
  errors.set(kind, (errors.get(kind) ?? 0) + 1);
}

/** Consul blocking queries, each watcher in its own loop on its own connection. */
class ConsulWatchFleet implements WatchFleet {
  readonly count: number;
  readonly errorKinds = new Map<string, number>();
  readonly #http: HttpEndpoints;
  readonly #abort = new AbortController();
  readonly #seen: Float64Array;
  readonly #waiting: Uint8Array;
  readonly #staleQuery: string;
  #loops: Promise<void>[] = [];

  constructor(urls: readonly string[], count: number, stale: boolean) {
    this.count = count;
    this.#staleQuery = stale ? '&stale' : '';
    this.#http = new HttpEndpoints({ urls, connections: 1, watchConnections: Math.ceil(count / urls.length) + 1 });
    this.#seen = new Float64Array(count).fill(Number.NaN);
    this.#waiting = new Uint8Array(count);
    setMaxListeners(2 * count + 16, this.#abort.signal);
  }

  endpointOf(watcher: number): number {
    return watcher % this.#http.count;
  }

  async start(onWake: WakeHandler): Promise<void> {
    const indexes = new Float64Array(this.count);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < this.count) {
        const watcher = next++;
        const answer = await this.#get(watcher, 0);
        if ('error' in answer) throw new Error(`watcher ${watcher}: initial read failed: ${answer.error}`);
        indexes[watcher] = answer.index;
        this.#seen[watcher] = answer.stamp ?? Number.NaN;
      }
    };
    await Promise.all(Array.from({ length: Math.min(START_CONCURRENCY, this.count) }, lane));
    this.#loops = Array.from({ length: this.count }, async (_, watcher) => this.#loop(watcher, indexes[watcher] ?? 0, onWake));
  }

  async armed(stamp: number): Promise<boolean> {
    const deadline = performance.now() + ARM_TIMEOUT_MS;
    while (performance.now() < deadline) {
      let ready = 0;
      for (let watcher = 0; watcher < this.count; watcher++) if (this.#seen[watcher] === stamp && this.#waiting[watcher] === 1) ready++;
      if (ready === this.count) return true;
      await sleep(5);
    }
    return false;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.race([Promise.all(this.#loops), sleep(5_000)]);
    await this.#http.close();
  }

  async #loop(watcher: number, startIndex: number, onWake: WakeHandler): Promise<void> {
    let index = startIndex;
    while (!this.#abort.signal.aborted) {
      this.#waiting[watcher] = 1;
      const answer = await this.#get(watcher, index);
      this.#waiting[watcher] = 0;
      if (this.#abort.signal.aborted) return;
      if ('error' in answer) {
        countError(this.errorKinds, answer.error);
        await sleep(ERROR_BACKOFF_MS);
        continue;
      }
      if (answer.index < index) countError(this.errorKinds, 'watch:index-regressed');
      if (answer.index > index && answer.stamp !== undefined && answer.stamp !== this.#seen[watcher]) {
        this.#seen[watcher] = answer.stamp;
        onWake(watcher, answer.stamp, answer.receivedAtMs);
      }
      index = answer.index;
    }
  }

  /** One read of the prefix (blocking when `index` > 0); the time is taken when the headers arrive. */
  async #get(watcher: number, index: number): Promise<{ index: number; stamp: number | undefined; receivedAtMs: number } | { error: string }> {
    const query = index === 0 ? `?recurse${this.#staleQuery}` : `?recurse&index=${index}&wait=${CONSUL_WAIT}${this.#staleQuery}`;
    try {
      const response = await this.#http.watchPool(this.endpointOf(watcher)).request({
        method: 'GET', path: `/v1/kv/${keyPath(WATCH_PREFIX)}${query}`, signal: this.#abort.signal,
        headersTimeout: CONSUL_WATCH_TIMEOUT_MS, bodyTimeout: CONSUL_WATCH_TIMEOUT_MS,
      });
      const receivedAtMs = performance.now();
      // Read the body and re-arm only after this event-loop pass: answers that arrived together
      // are then all timestamped before any watcher spends CPU on decoding and on its next
      // request, so a late watcher's figure is not the other watchers' client-side work.
      if (index > 0) await new Promise<void>((resolve) => { setImmediate(resolve); });
      const text = await response.body.text();
      const header = response.headers['x-consul-index'];
      const answerIndex = typeof header === 'string' ? Number(header) : Number.NaN;
      if (response.statusCode !== 200) return { error: `status:${response.statusCode}` };
      if (!(Number.isSafeInteger(answerIndex) && answerIndex > 0)) return { error: 'header:bad-x-consul-index' };
      const entries = parseJson(text);
      const entry: unknown = Array.isArray(entries) ? entries[0] : undefined;
      if (!isRecord(entry) || typeof entry['Value'] !== 'string') return { error: 'body:no-entry' };
      return { index: answerIndex, stamp: readStamp(Buffer.from(entry['Value'], 'base64').toString('latin1')), receivedAtMs };
    } catch (error) {
      return { error: transportErrorKind(error) };
    }
  }
}

/** etcd streaming watches (etcd-target.ts watchPrefix), one stream per watcher. */
class EtcdWatchFleet implements WatchFleet {
  readonly count: number;
  readonly errorKinds = new Map<string, number>();
  readonly #target: KvTarget;
  readonly #abort = new AbortController();
  readonly #seen: Float64Array;
  #ready = 0;
  #loops: Promise<void>[] = [];

  constructor(urls: readonly string[], count: number) {
    this.count = count;
    this.#target = etcdTarget({ urls, connections: 1, watchConnections: Math.ceil(count / urls.length) + 1 });
    this.#seen = new Float64Array(count).fill(Number.NaN);
    setMaxListeners(4 * count + 16, this.#abort.signal);
  }

  endpointOf(watcher: number): number {
    return watcher % this.#target.endpointCount;
  }

  async start(onWake: WakeHandler): Promise<void> {
    this.#loops = Array.from({ length: this.count }, async (_, watcher) => this.#target.watchPrefix(this.endpointOf(watcher), WATCH_PREFIX, {
      onReady: () => { this.#ready++; },
      onChanges: (values, receivedAtMs) => {
        for (const value of values) {
          const stamp = readStamp(value);
          if (stamp === undefined) continue;
          this.#seen[watcher] = stamp;
          onWake(watcher, stamp, receivedAtMs);
        }
      },
      onError: (error) => countError(this.errorKinds, error),
    }, this.#abort.signal));
    const deadline = performance.now() + ARM_TIMEOUT_MS;
    while (this.#ready < this.count && performance.now() < deadline) await sleep(20);
    if (this.#ready < this.count) throw new Error(`only ${this.#ready} of ${this.count} etcd watches were created`);
  }

  async armed(stamp: number): Promise<boolean> {
    // Streams stay open: armed once every watcher has seen the previous write (or none was made).
    const deadline = performance.now() + ARM_TIMEOUT_MS;
    while (performance.now() < deadline) {
      let ready = 0;
      for (let watcher = 0; watcher < this.count; watcher++) if (stamp === 0 || this.#seen[watcher] === stamp) ready++;
      if (ready === this.count) return true;
      await sleep(5);
    }
    return false;
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await Promise.race([Promise.all(this.#loops), sleep(5_000)]);
    await this.#target.close();
  }
}

interface CurrentWrite {
  readonly stamp: number;
  readonly sentAtMs: number;
  readonly receivedAtMs: Float64Array;
  woken: number;
  done: () => void;
}

/** Runs one batch: start the watchers, make the writes, measure every wake-up. */
export async function runWatchBatch(options: WatchBatchOptions): Promise<WatchBatchReport> {
  if (!(options.watchers >= 1 && options.watchers <= WATCHERS_MAX)) throw new Error(`watchers must be 1..${WATCHERS_MAX}`);
  const writer = options.protocol === 'etcd'
    ? etcdTarget({ urls: options.urls, connections: 1, watchConnections: 1 })
    : consulTarget({ urls: options.urls, connections: 1, watchConnections: 1 });
  const fleet: WatchFleet = options.protocol === 'etcd' ? new EtcdWatchFleet(options.urls, options.watchers) : new ConsulWatchFleet(options.urls, options.watchers, options.stale === true);
  const samples = { fromSend: [] as number[], fromAck: [] as number[], onLeader: [] as number[], onFollowers: [] as number[] };
  const writes: WatchWrite[] = [];
  let missed = 0;
  let current: CurrentWrite | null = null;
  try {
    const setup = await writer.put(options.writeEndpoint, WATCH_KEY, stampedValue(options.valueBytes, 0));
    if (!setup.ok) throw new Error(`${options.label}: the first write under the prefix failed: ${setup.error}`);
    await fleet.start((watcher, stamp, receivedAtMs) => {
      const write = current;
      if (write === null || stamp !== write.stamp || !Number.isNaN(write.receivedAtMs[watcher] ?? 0)) return;
      write.receivedAtMs[watcher] = receivedAtMs;
      write.woken++;
      if (write.woken === fleet.count) write.done();
    });
    let previousStamp = 0;
    for (let index = 0; index < options.writes; index++) {
      if (!(await fleet.armed(previousStamp))) countError(fleet.errorKinds, 'watch:not-re-armed');
      await sleep(options.settleMs);
      const measured = await oneWrite(options, writer, fleet, (write) => { current = write; });
      current = null;
      previousStamp = measured.stamp;
      missed += measured.report.missed;
      writes.push(measured.report);
      for (let watcher = 0; watcher < fleet.count; watcher++) {
        const receivedAtMs = measured.receivedAtMs[watcher] ?? Number.NaN;
        if (Number.isNaN(receivedAtMs)) continue;
        const fromAck = receivedAtMs - measured.ackAtMs;
        samples.fromSend.push(receivedAtMs - measured.sentAtMs);
        samples.fromAck.push(fromAck);
        (fleet.endpointOf(watcher) === options.leaderEndpoint ? samples.onLeader : samples.onFollowers).push(fromAck);
      }
    }
  } finally {
    await fleet.stop();
    await writer.close();
  }
  return {
    label: options.label,
    protocol: options.protocol,
    watchers: options.watchers,
    members: options.urls.length,
    writes,
    fromSend: percentiles(samples.fromSend),
    fromAck: percentiles(samples.fromAck),
    fromAckOnLeader: percentiles(samples.onLeader),
    fromAckOnFollowers: percentiles(samples.onFollowers),
    missed,
    errorKinds: Object.fromEntries(fleet.errorKinds),
  };
}

/** One write and the wait for every watcher to see it. */
async function oneWrite(options: WatchBatchOptions, writer: KvTarget, fleet: WatchFleet, publish: (write: CurrentWrite) => void):
  Promise<{ stamp: number; sentAtMs: number; ackAtMs: number; receivedAtMs: Float64Array; report: WatchWrite }> {
  const sentAtMs = performance.now();
  const value = stampedValue(options.valueBytes, sentAtMs);
  const stamp = readStamp(value) ?? Number.NaN;
  let done: () => void = () => undefined;
  const allWoken = new Promise<void>((resolve) => { done = resolve; });
  const write: CurrentWrite = { stamp, sentAtMs, receivedAtMs: new Float64Array(fleet.count).fill(Number.NaN), woken: 0, done };
  publish(write);
  const result = await writer.put(options.writeEndpoint, WATCH_KEY, value);
  const ackAtMs = performance.now();
  if (!result.ok) countError(fleet.errorKinds, `write:${result.error}`);
  await Promise.race([allWoken, sleep(WAKE_TIMEOUT_MS)]);
  const received = Array.from(write.receivedAtMs).filter((at) => !Number.isNaN(at));
  const fromAck = received.map((at) => at - ackAtMs);
  return {
    stamp,
    sentAtMs,
    ackAtMs,
    receivedAtMs: write.receivedAtMs,
    report: {
      ackMs: round(ackAtMs - sentAtMs),
      woken: received.length,
      missed: fleet.count - received.length,
      spreadMs: received.length === 0 ? 0 : round(Math.max(...received) - Math.min(...received)),
      p99FromAckMs: percentiles(fromAck).p99Ms,
    },
  };
}
