/**
 * The UI's only way to the agent: `fetch` on the same origin (the page's own agent), with
 * Consul's meta headers read and failures sorted into what a person must be told:
 * - `unreachable`: no HTTP answer at all (the agent is down, the network is gone, a timeout);
 * - `no-leader`: the agent answered but the cluster has no leader (`500 No cluster leader`,
 *   with or without `rpc error making call: `, or `No known Consul servers` on a client agent);
 * - `http`: any other unexpected status, with Consul's plain-text message.
 * `fetch` is injected so the logic runs in Node's tests with a fake.
 */
import { parseConsulJson } from './consul-json.js';

/** What kind of failure an ApiError is (see the file comment). */
export type ApiErrorKind = 'unreachable' | 'no-leader' | 'http';

/** A failed call, classified. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly kind: ApiErrorKind;
  /** The HTTP status, or null when there was no answer. */
  readonly status: number | null;

  constructor(kind: ApiErrorKind, status: number | null, message: string, options?: ErrorOptions) {
    super(message, options);
    this.kind = kind;
    this.status = status;
  }
}

/** Consul's meta headers (consul-api.md §1); null where the endpoint sends none. */
export interface QueryMeta {
  /** `X-Consul-Index`, or null when absent (non-blocking endpoints). */
  readonly index: number | null;
  /** `X-Consul-KnownLeader`, or null when absent. */
  readonly knownLeader: boolean | null;
  /** `X-Consul-LastContact` in ms, or null when absent. */
  readonly lastContactMs: number | null;
}

/** An answer: its status (one of those the caller accepts), meta headers and body text. */
export interface ApiResponse {
  readonly status: number;
  readonly meta: QueryMeta;
  readonly text: string;
}

/** The subset of `fetch` the client uses. */
export type FetchLike = (url: string, init: { method: string; body?: Uint8Array | string; signal?: AbortSignal; headers?: Record<string, string> }) => Promise<{
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}>;

/** Observes every call's outcome: how the connection banner learns about trouble. */
export type CallObserver = (outcome: { ok: true; meta: QueryMeta } | { ok: false; error: ApiError }) => void;

/** Options of one call. */
export interface CallOptions {
  readonly method?: 'GET' | 'PUT' | 'DELETE';
  readonly body?: Uint8Array | string;
  readonly signal?: AbortSignal;
  /** Statuses that are answers, not errors (default 200 only; KV reads add 404). */
  readonly accept?: readonly number[];
}

/** Messages that mean "the cluster has no leader right now" (consul-api.md §2). */
const NO_LEADER_PATTERN = /No cluster leader|No known Consul servers|Not ready to serve consistent reads/;

/** Reads the meta headers of an answer. */
export function metaOf(headers: { get(name: string): string | null }): QueryMeta {
  const index = headers.get('x-consul-index');
  const knownLeader = headers.get('x-consul-knownleader');
  const lastContact = headers.get('x-consul-lastcontact');
  return {
    index: index !== null && /^\d{1,15}$/.test(index) ? Number(index) : null,
    knownLeader: knownLeader === null ? null : knownLeader === 'true',
    lastContactMs: lastContact !== null && /^\d{1,15}$/.test(lastContact) ? Number(lastContact) : null,
  };
}

/** Sorts an unexpected status into an ApiError (see the file comment). */
export function errorForStatus(status: number, body: string): ApiError {
  const message = body.trim() === '' ? `HTTP ${status}` : body.trim();
  if (status === 500 && NO_LEADER_PATTERN.test(body)) return new ApiError('no-leader', status, message);
  return new ApiError('http', status, message);
}

/** Calls the agent's HTTP API; see the file comment. */
export class ApiClient {
  readonly #fetch: FetchLike;
  readonly #observers: CallObserver[] = [];

  constructor(fetchFunction: FetchLike) {
    this.#fetch = fetchFunction;
  }

  /** Adds an observer of every call's outcome (aborted calls are not reported). */
  observe(observer: CallObserver): void {
    this.#observers.push(observer);
  }

  /** One call; throws ApiError unless the status is accepted. `path` starts with `/v1/`. */
  async call(path: string, options: CallOptions = {}): Promise<ApiResponse> {
    const accept = options.accept ?? [200];
    let response: Awaited<ReturnType<FetchLike>>;
    let text: string;
    try {
      const init: Parameters<FetchLike>[1] = { method: options.method ?? 'GET' };
      if (options.body !== undefined) init.body = options.body;
      if (options.signal !== undefined) init.signal = options.signal;
      response = await this.#fetch(path, init);
      text = await response.text();
    } catch (cause) {
      if (options.signal?.aborted === true) throw cause; // the caller gave up: nobody to tell
      const error = new ApiError('unreachable', null, 'The agent cannot be reached', { cause });
      this.#notify({ ok: false, error });
      throw error;
    }
    const meta = metaOf(response.headers);
    if (!accept.includes(response.status)) {
      const error = errorForStatus(response.status, text);
      this.#notify({ ok: false, error });
      throw error;
    }
    this.#notify({ ok: true, meta });
    return { status: response.status, meta, text };
  }

  /** A GET whose 200 body is JSON (large integers kept as digit strings); 404 gives null. */
  async getJson(path: string, options: CallOptions = {}): Promise<{ body: unknown; meta: QueryMeta; status: number }> {
    const response = await this.call(path, { ...options, method: 'GET' });
    const body = response.status === 200 && response.text !== '' ? parseConsulJson(response.text) : null;
    return { body, meta: response.meta, status: response.status };
  }

  #notify(outcome: Parameters<CallObserver>[0]): void {
    for (const observer of this.#observers) observer(outcome);
  }
}
