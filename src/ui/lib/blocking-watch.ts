/**
 * Keeps one view's data live without a polling storm. A `Watch` runs one loop with at most one
 * request in flight:
 * - `blocking` mode is Consul's blocking query (consul-api.md §3): ask with `index=<last
 *   X-Consul-Index>&wait=<s>`; the agent answers when the data changes or the wait ends. Data
 *   is handed on only when the index moved; an index that went backwards (snapshot restore,
 *   tombstone reaping) starts over from 0, as consul-template does; a missing index (an endpoint
 *   that does not block) falls back to polling, never to a busy loop; successive requests start
 *   at least `spacingMs` apart, so a key rewritten continuously costs a few requests a second;
 * - `poll` mode is for endpoints that cannot block (`/v1/debug/raft`, raft configuration): one
 *   request every `pollIntervalMs`;
 * - on failure the loop backs off exponentially (1 s doubling to 30 s, ±20 % jitter), and the
 *   next request does not block, so the view learns at once when the agent is back;
 * - `pause()` (the tab was hidden) aborts the request in flight and asks nothing until
 *   `resume()`, which asks at once: a browser gives each origin about six connections, and
 *   blocking queries of background tabs must not take them from the visible one.
 * Timers and randomness are injected so tests run the loop on a fake clock.
 */
import { ApiError } from './api-client.js';
import type { ApiClient, QueryMeta } from './api-client.js';

/** Seconds a blocking query waits (Consul clamps to 10 min; node-consul and python use 30 s). */
export const WATCH_WAIT_SECONDS_DEFAULT = 30;
/** First retry delay after a failure. */
export const WATCH_BACKOFF_MS_MIN = 1000;
/** Longest retry delay: a dead agent is asked about twice a minute. */
export const WATCH_BACKOFF_MS_MAX = 30_000;
/** Least time between the starts of two requests of one watch (a busy key cannot cause a storm). */
export const WATCH_SPACING_MS_MIN = 250;
/**
 * Grace on top of `wait` before a request is given up: Consul holds a blocking query up to
 * wait × 1.0625, and a server without a leader holds any request up to 7 s (rpc_hold_timeout).
 */
export const WATCH_TIMEOUT_GRACE_MS = 15_000;
/** How long a paused loop sleeps before looking again (resume() wakes it sooner). */
const WATCH_PAUSE_SLEEP_MS = 60_000;

/** Where a watch stands, for the view's "live" indicator and the connection banner. */
export type WatchState =
  | { readonly kind: 'loading' }
  | { readonly kind: 'live'; readonly index: number | null; readonly knownLeader: boolean | null }
  | { readonly kind: 'retrying'; readonly error: ApiError; readonly attempt: number; readonly retryInMs: number };

/** The clock a watch runs on. */
export interface WatchTimers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
  random(): number;
}

/** What a watch fetches and whom it tells. */
export interface WatchOptions<T> {
  readonly client: ApiClient;
  /** The path, with its own query if any (`/v1/kv/a/?keys&separator=/`). */
  readonly path: string;
  readonly mode: 'blocking' | 'poll';
  /** Statuses that are data (default 200; a KV folder adds 404 = empty). */
  readonly accept?: readonly number[];
  readonly waitSeconds?: number;
  /** Poll mode (and blocking without an index): time between requests. */
  readonly pollIntervalMs?: number;
  readonly spacingMs?: number;
  /** Turns an answer into the view's data; throwing makes the answer a failure. */
  readonly decode: (answer: { body: unknown; status: number; meta: QueryMeta }) => T;
  readonly onData: (data: T, meta: QueryMeta) => void;
  readonly onState?: (state: WatchState) => void;
  readonly timers?: WatchTimers;
}

/** The browser's (and Node's) clock. */
export const REAL_TIMERS: WatchTimers = {
  setTimeout: (callback, delayMs) => globalThis.setTimeout(callback, delayMs),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
  now: () => Date.now(),
  random: () => Math.random(),
};

/** The retry delay after `attempt` consecutive failures (1-based), jittered by `random` ∈ [0,1). */
export function backoffMs(attempt: number, random: number): number {
  const base = Math.min(WATCH_BACKOFF_MS_MAX, WATCH_BACKOFF_MS_MIN * 2 ** Math.min(attempt - 1, 16));
  return Math.round(base * (0.8 + 0.4 * random));
}

/** `path` with `extra` (`a=1&b=2`) appended to its query. */
export function withQuery(path: string, extra: string): string {
  return `${path}${path.includes('?') ? '&' : '?'}${extra}`;
}

/** One live data source of a view (see the file comment). */
export class Watch<T> {
  readonly #options: WatchOptions<T>;
  readonly #timers: WatchTimers;
  #running = false;
  #stopped = false;
  #paused = false;
  /** The index the next request blocks on (0: answer at once). */
  #index = 0;
  /** The index of the data last handed on; null before the first. */
  #deliveredIndex: number | null = null;
  #failures = 0;
  #controller: AbortController | null = null;
  #wake: (() => void) | null = null;
  #requestCount = 0;

  constructor(options: WatchOptions<T>) {
    this.#options = options;
    this.#timers = options.timers ?? REAL_TIMERS;
  }

  /** Requests made so far (tests check that nothing storms). */
  get requestCount(): number {
    return this.#requestCount;
  }

  /** Starts the loop (once). */
  start(): void {
    if (this.#running || this.#stopped) return;
    this.#running = true;
    this.#options.onState?.({ kind: 'loading' });
    void this.#loop();
  }

  /** Stops the loop and aborts the request in flight; nothing is reported after this. */
  stop(): void {
    this.#stopped = true;
    this.#controller?.abort();
    this.#wake?.();
  }

  /** Cuts a back-off or poll pause short: the next request goes out now. */
  retryNow(): void {
    this.#wake?.();
  }

  /** Stops asking (and aborts the request in flight) until resume(); may be called before start(). */
  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#controller?.abort();
    this.#wake?.();
  }

  /** Asks again at once, without blocking: whatever changed while paused shows now. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#index = 0;
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      if (this.#paused) {
        await this.#sleep(WATCH_PAUSE_SLEEP_MS); // woken by resume() or stop()
        continue;
      }
      const startedAt = this.#timers.now();
      const next = await this.#once();
      if (this.#stopped) return;
      // Spacing counts from the request's start; a back-off from the failure, however long it took.
      await this.#sleep(next.fromStart ? Math.max(0, next.delayMs - (this.#timers.now() - startedAt)) : next.delayMs);
    }
  }

  /** One request and its handling; returns when the next one may go. */
  async #once(): Promise<{ delayMs: number; fromStart: boolean }> {
    const options = this.#options;
    const pollMs = options.pollIntervalMs ?? 1000;
    const blocking = options.mode === 'blocking' && this.#index > 0;
    const waitSeconds = options.waitSeconds ?? WATCH_WAIT_SECONDS_DEFAULT;
    const path = blocking ? withQuery(options.path, `index=${this.#index}&wait=${waitSeconds}s`) : options.path;
    const controller = new AbortController();
    this.#controller = controller;
    let timedOut = false;
    const timeout = this.#timers.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, (blocking ? waitSeconds * 1062.5 : 0) + WATCH_TIMEOUT_GRACE_MS);
    this.#requestCount++;
    let data: T;
    let meta: QueryMeta;
    try {
      const answer = await options.client.getJson(path, { signal: controller.signal, accept: options.accept ?? [200] });
      meta = answer.meta;
      data = options.decode(answer);
    } catch (cause) {
      if (this.#stopped || this.#paused) return { delayMs: 0, fromStart: true }; // not a failure: we hung up
      return this.#failed(timedOut ? new ApiError('unreachable', null, 'The agent did not answer in time', { cause })
        : cause instanceof ApiError ? cause : new ApiError('http', null, `Unexpected answer: ${String(cause)}`, { cause }));
    } finally {
      this.#timers.clearTimeout(timeout);
      this.#controller = null;
    }
    if (this.#stopped || this.#paused) return { delayMs: 0, fromStart: true };
    this.#failures = 0;
    const index = meta.index;
    const changed = options.mode === 'poll' || index === null || this.#deliveredIndex === null || index !== this.#deliveredIndex;
    // Consul's index only grows; one that went backwards means the data was replaced: start over.
    this.#index = index === null || index < this.#index ? 0 : index;
    this.#deliveredIndex = index;
    this.#options.onState?.({ kind: 'live', index, knownLeader: meta.knownLeader });
    if (changed) this.#deliver(data, meta);
    if (options.mode === 'poll' || index === null) return { delayMs: pollMs, fromStart: true };
    return { delayMs: options.spacingMs ?? WATCH_SPACING_MS_MIN, fromStart: true };
  }

  #failed(error: ApiError): { delayMs: number; fromStart: boolean } {
    this.#failures++;
    this.#index = 0; // the next request must not block: show the recovery as soon as it happens
    const retryInMs = backoffMs(this.#failures, this.#timers.random());
    this.#options.onState?.({ kind: 'retrying', error, attempt: this.#failures, retryInMs });
    return { delayMs: retryInMs, fromStart: false };
  }

  /** Hands data on; a view that throws is a bug, reported without stopping the loop. */
  #deliver(data: T, meta: QueryMeta): void {
    try {
      this.#options.onData(data, meta);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  #sleep(delayMs: number): Promise<void> {
    if (delayMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const handle = this.#timers.setTimeout(() => {
        this.#wake = null;
        resolve();
      }, delayMs);
      this.#wake = () => {
        this.#timers.clearTimeout(handle);
        this.#wake = null;
        resolve();
      };
    });
  }
}
