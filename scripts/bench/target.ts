import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

/**
 * What the load generator asks of a system under test. Two adapters implement it: Consul's
 * HTTP API (`consul-target.ts`, for Conclave and the fake stand-in) and etcd 3.4's v3 JSON
 * gateway (`etcd-target.ts`). Every operation validates status *and* body and returns a
 * result instead of throwing, so a wrong answer is counted as an error, never as a success.
 */

/** Consul's three read modes; each adapter maps them to its nearest equivalent. */
export type ReadMode = 'default' | 'consistent' | 'stale';

/** A validated outcome: `error` is a short, low-cardinality kind used as a counter key. */
export type OpResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** A CAS cycle (read the modify index, then write conditionally): `swapped: false` is a correct conflict. */
export type CasResult = { readonly ok: true; readonly swapped: boolean } | { readonly ok: false; readonly error: string };

/** A created session (Consul) or granted lease (etcd). */
export type SessionResult = { readonly ok: true; readonly id: string } | { readonly ok: false; readonly error: string };

/** Callbacks of one watcher loop. */
export interface WatchEvents {
  /** The watch is established: changes after this moment will be delivered. */
  onReady(): void;
  /** Values written since the previous wake-up, delivered at `receivedAtMs` (performance.now()). */
  onChanges(values: readonly string[], receivedAtMs: number): void;
  onError(error: string): void;
}

/** A system under test, reached through one or more HTTP endpoints (one per cluster member). */
export interface KvTarget {
  /** `consul` speaks /v1 (Conclave or the stand-in); `etcd` speaks the v3 JSON gateway. */
  readonly protocol: 'consul' | 'etcd';
  readonly endpointCount: number;
  put(endpoint: number, key: string, value: string): Promise<OpResult>;
  /** Reads one key that must exist and hold a value of `valueBytes` bytes. */
  get(endpoint: number, key: string, mode: ReadMode, valueBytes: number): Promise<OpResult>;
  /** Reads the key's modify index (default read mode), then writes `value` only if it is unchanged. */
  cas(endpoint: number, key: string, value: string): Promise<CasResult>;
  /** A session with a TTL (Consul `Behavior: delete`), or an etcd lease of that TTL. */
  createSession(endpoint: number, ttlSeconds: number): Promise<SessionResult>;
  renewSession(endpoint: number, sessionId: string): Promise<OpResult>;
  /** Destroys the session and, with it, the keys it holds. */
  destroySession(endpoint: number, sessionId: string): Promise<OpResult>;
  /** Writes `key` held by the session: succeeds if the key is free or already held by it. */
  acquire(endpoint: number, key: string, sessionId: string, value: string): Promise<OpResult>;
  /** Runs a watch loop on every key under `prefix` until `signal` aborts. */
  watchPrefix(endpoint: number, prefix: string, events: WatchEvents, signal: AbortSignal): Promise<void>;
  /** Deletes every key under `prefix` (set-up and clean-up, not measured). */
  deletePrefix(endpoint: number, prefix: string): Promise<OpResult>;
  close(): Promise<void>;
}

/** Connections and per-request bounds shared by both adapters. */
export interface HttpEndpointsOptions {
  /** Base URLs, e.g. `http://127.0.0.1:8500`, one per cluster member. */
  readonly urls: readonly string[];
  /** Connections per endpoint: at least the number of requests in flight, so none queue in undici. */
  readonly connections: number;
  /** Separate connections per endpoint for long polls and streams, so they never starve the load. */
  readonly watchConnections: number;
}

/** The methods the adapters send. */
export type HttpMethod = Extract<Dispatcher.HttpMethod, 'GET' | 'PUT' | 'POST' | 'DELETE'>;

/** A plain, fully read HTTP reply. */
export interface HttpReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
}

/** A request that ends with no answer longer than this is an error (blocking reads use the watch pool). */
const REQUEST_TIMEOUT_MS = 30_000;
/** Watch pools: Consul's 15 s wait plus its jitter (wait/16) fits well inside this. */
const WATCH_TIMEOUT_MS = 60_000;

/** undici pools per endpoint: one for the load, one for watchers. Pipelining is off (1 request per connection). */
export class HttpEndpoints {
  readonly #pools: Pool[];
  readonly #watchPools: Pool[];

  constructor(options: HttpEndpointsOptions) {
    if (options.urls.length === 0) throw new Error('no endpoints');
    if (!(options.connections >= 1)) throw new Error('connections must be at least 1');
    const common = { pipelining: 1, keepAliveTimeout: 60_000, connect: { timeout: 5_000 } };
    this.#pools = options.urls.map((url) => new Pool(url, {
      ...common, connections: options.connections, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS,
    }));
    this.#watchPools = options.urls.map((url) => new Pool(url, {
      ...common, connections: Math.max(1, options.watchConnections), headersTimeout: WATCH_TIMEOUT_MS, bodyTimeout: WATCH_TIMEOUT_MS,
    }));
  }

  get count(): number {
    return this.#pools.length;
  }

  /** Sends one request and reads the whole body; a transport failure comes back as `{ error }`. */
  async request(endpoint: number, method: HttpMethod, path: string, body?: string, signal?: AbortSignal): Promise<HttpReply | { readonly error: string }> {
    return requestOn(this.#pool(this.#pools, endpoint), method, path, body, signal);
  }

  /** Like request(), on the watch pool: for blocking queries. */
  async longPoll(endpoint: number, method: HttpMethod, path: string, body?: string, signal?: AbortSignal): Promise<HttpReply | { readonly error: string }> {
    return requestOn(this.#pool(this.#watchPools, endpoint), method, path, body, signal);
  }

  /** The watch pool itself, for a streaming reader (etcd's /v3/watch). */
  watchPool(endpoint: number): Pool {
    return this.#pool(this.#watchPools, endpoint);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools, ...this.#watchPools].map(async (pool) => pool.destroy()));
  }

  #pool(pools: readonly Pool[], endpoint: number): Pool {
    const pool = pools[endpoint % pools.length];
    if (pool === undefined) throw new Error(`no endpoint ${endpoint}`);
    return pool;
  }
}

async function requestOn(pool: Pool, method: HttpMethod, path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<HttpReply | { readonly error: string }> {
  try {
    const response = await pool.request({
      method,
      path,
      ...(body === undefined ? {} : { body }),
      ...(signal === undefined ? {} : { signal }),
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text };
  } catch (error) {
    return { error: transportErrorKind(error) };
  }
}

/** A short, stable name for a transport failure: `network:ECONNREFUSED`, `network:UND_ERR_HEADERS_TIMEOUT`. */
export function transportErrorKind(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code === 'string') return `network:${code}`;
    return `network:${error.name}`;
  }
  return 'network:unknown';
}

/** The error kind for an unexpected HTTP status: `status:500`. */
export function statusError(reply: HttpReply): string {
  return `status:${reply.status}`;
}

/** Parses JSON, or returns undefined: a body that does not parse is a wrong answer, not a crash. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Whether a value is a plain JSON object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every key this harness writes is printable ASCII; encode each segment for the URL path. */
export function keyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/**
 * A value of exactly `valueBytes` ASCII bytes that starts with the moment it was sent
 * (performance.now(), ms), so a watcher that receives it knows the write-to-wake-up latency.
 */
export function stampedValue(valueBytes: number, sentAtMs: number): string {
  const stamp = `${sentAtMs.toFixed(3)};`;
  if (stamp.length >= valueBytes) return stamp;
  return stamp + 'v'.repeat(valueBytes - stamp.length);
}

/** The send time written by stampedValue(), or undefined for a value it did not write. */
export function readStamp(value: string): number | undefined {
  const end = value.indexOf(';');
  if (end <= 0) return undefined;
  const stamp = Number(value.slice(0, end));
  return Number.isFinite(stamp) ? stamp : undefined;
}
