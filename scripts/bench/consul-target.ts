import { setTimeout as sleep } from 'node:timers/promises';
import {
  HttpEndpoints, isRecord, keyPath, parseJson, statusError,
} from './target.js';
import type {
  CasResult, HttpEndpointsOptions, HttpReply, KvTarget, OpResult, ReadMode, SessionResult, WatchEvents,
} from './target.js';

/**
 * The Consul HTTP API adapter (consul-api.md §4 KV, §6 sessions, §3 blocking queries), used
 * for Conclave and for the fake stand-in. Success means what a Consul client would accept:
 * a PUT answers `true`, a GET answers 200 with a one-entry array holding the key and a value
 * of the written size, a renew answers an array with the session.
 */

/** What Swarm's libkv asks for (consul-api.md §8): wait=15s on every watch. */
const WATCH_WAIT = '15s';
/** Back-off after a failed watch request, like node-consul's watch (200 ms minimum). */
const WATCH_ERROR_BACKOFF_MS = 200;

const READ_QUERY: Readonly<Record<ReadMode, string>> = { default: '', consistent: '?consistent', stale: '?stale' };

interface ConsulEntry {
  readonly key: string;
  readonly value: string | null;
  readonly modifyIndex: number;
}

/** Builds an adapter on one Consul-API endpoint per member. */
export function consulTarget(options: HttpEndpointsOptions): KvTarget {
  return new ConsulTarget(new HttpEndpoints(options));
}

class ConsulTarget implements KvTarget {
  readonly protocol = 'consul';
  readonly #http: HttpEndpoints;

  constructor(http: HttpEndpoints) {
    this.#http = http;
  }

  get endpointCount(): number {
    return this.#http.count;
  }

  async put(endpoint: number, key: string, value: string): Promise<OpResult> {
    return expectTrue(await this.#http.request(endpoint, 'PUT', `/v1/kv/${keyPath(key)}`, value));
  }

  async get(endpoint: number, key: string, mode: ReadMode, valueBytes: number): Promise<OpResult> {
    const read = await this.#readOne(endpoint, key, mode);
    if (!read.ok) return read;
    if (read.entry.value === null || Buffer.byteLength(read.entry.value, 'latin1') !== valueBytes) {
      return { ok: false, error: 'body:wrong-value-size' };
    }
    return { ok: true };
  }

  async cas(endpoint: number, key: string, value: string): Promise<CasResult> {
    const read = await this.#readOne(endpoint, key, 'default');
    if (!read.ok) return read;
    const reply = await this.#http.request(endpoint, 'PUT', `/v1/kv/${keyPath(key)}?cas=${read.entry.modifyIndex}`, value);
    if ('error' in reply) return { ok: false, error: reply.error };
    if (reply.status !== 200) return { ok: false, error: statusError(reply) };
    const body = reply.text.trim();
    if (body === 'true') return { ok: true, swapped: true };
    if (body === 'false') return { ok: true, swapped: false };
    return { ok: false, error: 'body:not-boolean' };
  }

  async createSession(endpoint: number, ttlSeconds: number): Promise<SessionResult> {
    // libkv's TTL session (consul-api.md §8): delete the keys on invalidation, 1 ms lock-delay.
    const body = JSON.stringify({ Name: 'conclave-bench', TTL: `${ttlSeconds}s`, Behavior: 'delete', LockDelay: '1ms' });
    const reply = await this.#http.request(endpoint, 'PUT', '/v1/session/create', body);
    if ('error' in reply) return { ok: false, error: reply.error };
    if (reply.status !== 200) return { ok: false, error: statusError(reply) };
    const parsed = parseJson(reply.text);
    if (!isRecord(parsed) || typeof parsed['ID'] !== 'string' || parsed['ID'] === '') return { ok: false, error: 'body:no-session-id' };
    return { ok: true, id: parsed['ID'] };
  }

  async renewSession(endpoint: number, sessionId: string): Promise<OpResult> {
    const reply = await this.#http.request(endpoint, 'PUT', `/v1/session/renew/${encodeURIComponent(sessionId)}`);
    if ('error' in reply) return { ok: false, error: reply.error };
    if (reply.status !== 200) return { ok: false, error: statusError(reply) };
    // §6: renew answers an array holding the session; G re-reads the TTL from it.
    const parsed = parseJson(reply.text);
    if (!Array.isArray(parsed) || parsed.length !== 1) return { ok: false, error: 'body:not-session-array' };
    const session: unknown = parsed[0];
    if (!isRecord(session) || session['ID'] !== sessionId) return { ok: false, error: 'body:wrong-session' };
    if (typeof session['TTL'] !== 'string' || session['TTL'] === '') return { ok: false, error: 'body:no-ttl' };
    return { ok: true };
  }

  async destroySession(endpoint: number, sessionId: string): Promise<OpResult> {
    return expectTrue(await this.#http.request(endpoint, 'PUT', `/v1/session/destroy/${encodeURIComponent(sessionId)}`));
  }

  async acquire(endpoint: number, key: string, sessionId: string, value: string): Promise<OpResult> {
    const path = `/v1/kv/${keyPath(key)}?acquire=${encodeURIComponent(sessionId)}`;
    return expectTrue(await this.#http.request(endpoint, 'PUT', path, value));
  }

  async deletePrefix(endpoint: number, prefix: string): Promise<OpResult> {
    return expectTrue(await this.#http.request(endpoint, 'DELETE', `/v1/kv/${keyPath(prefix)}?recurse`));
  }

  async watchPrefix(endpoint: number, prefix: string, events: WatchEvents, signal: AbortSignal): Promise<void> {
    // libkv's WatchTree (§8): GET ?recurse&index=N&wait=15s in a loop. Index 0 answers at once
    // and gives the starting index; after that, entries whose ModifyIndex passed N are news.
    let index = 0;
    let ready = false;
    let synced = false; // false at the start and after an error: the next answer only sets the index
    while (!signal.aborted) {
      const query = synced ? `?recurse&index=${index}&wait=${WATCH_WAIT}` : '?recurse';
      const reply = await this.#http.longPoll(endpoint, 'GET', `/v1/kv/${keyPath(prefix)}${query}`, undefined, signal);
      const receivedAtMs = performance.now();
      if (signal.aborted) return;
      const wake = parseWatchReply(reply);
      if (!wake.ok) {
        events.onError(wake.error);
        synced = false;
        await sleep(WATCH_ERROR_BACKOFF_MS, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!synced) {
        synced = true;
        if (!ready) events.onReady();
        ready = true;
      } else if (wake.index < index) {
        // §3: an index that goes back means "start over" to every client; count it, it is a bug or a restore.
        events.onError('watch:index-regressed');
      } else {
        const changed = wake.entries.filter((entry) => entry.modifyIndex > index && entry.value !== null);
        if (changed.length > 0) events.onChanges(changed.map((entry) => entry.value ?? ''), receivedAtMs);
      }
      index = wake.index;
    }
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  async #readOne(endpoint: number, key: string, mode: ReadMode): Promise<{ ok: true; entry: ConsulEntry } | { ok: false; error: string }> {
    const reply = await this.#http.request(endpoint, 'GET', `/v1/kv/${keyPath(key)}${READ_QUERY[mode]}`);
    if ('error' in reply) return { ok: false, error: reply.error };
    if (reply.status !== 200) return { ok: false, error: statusError(reply) };
    const entries = parseEntries(reply.text);
    if (entries === undefined) return { ok: false, error: 'body:not-kv-array' };
    const entry = entries[0];
    if (entries.length !== 1 || entry === undefined) return { ok: false, error: 'body:not-one-entry' };
    if (entry.key !== key) return { ok: false, error: 'body:wrong-key' };
    if (!(entry.modifyIndex > 0)) return { ok: false, error: 'body:no-modify-index' };
    return { ok: true, entry };
  }
}

function expectTrue(reply: HttpReply | { readonly error: string }): OpResult {
  if ('error' in reply) return { ok: false, error: reply.error };
  if (reply.status !== 200) return { ok: false, error: statusError(reply) };
  const body = reply.text.trim();
  if (body === 'true') return { ok: true };
  return { ok: false, error: body === 'false' ? 'body:false' : 'body:not-true' };
}

/** Decodes a KV GET body: an array of entries, values base64-decoded (latin1: the bench writes ASCII). */
function parseEntries(text: string): ConsulEntry[] | undefined {
  const parsed = parseJson(text);
  if (!Array.isArray(parsed)) return undefined;
  const entries: ConsulEntry[] = [];
  for (const item of parsed) {
    if (!isRecord(item) || typeof item['Key'] !== 'string' || typeof item['ModifyIndex'] !== 'number') return undefined;
    const value = item['Value'];
    if (value !== null && typeof value !== 'string') return undefined;
    entries.push({
      key: item['Key'],
      value: value === null ? null : Buffer.from(value, 'base64').toString('latin1'),
      modifyIndex: item['ModifyIndex'],
    });
  }
  return entries;
}

function parseWatchReply(reply: HttpReply | { readonly error: string }):
  { ok: true; index: number; entries: ConsulEntry[] } | { ok: false; error: string } {
  if ('error' in reply) return { ok: false, error: reply.error };
  const header = reply.headers['x-consul-index'];
  const index = typeof header === 'string' ? Number(header) : Number.NaN;
  // §1/§3: X-Consul-Index on every KV read, 404 included, and never 0.
  if (!(Number.isSafeInteger(index) && index > 0)) return { ok: false, error: 'header:bad-x-consul-index' };
  if (reply.status === 404) return { ok: true, index, entries: [] };
  if (reply.status !== 200) return { ok: false, error: statusError(reply) };
  const entries = parseEntries(reply.text);
  if (entries === undefined) return { ok: false, error: 'body:not-kv-array' };
  return { ok: true, index, entries };
}
