import { setTimeout as sleep } from 'node:timers/promises';
import {
  HttpEndpoints, isRecord, parseJson, statusError, transportErrorKind,
} from './target.js';
import type {
  CasResult, HttpEndpointsOptions, HttpReply, KvTarget, OpResult, ReadMode, SessionResult, WatchEvents,
} from './target.js';

/**
 * The etcd 3.4 adapter, over its v3 JSON gRPC gateway (keys and values base64, int64 as
 * strings). The mapping to Consul's operations, and why:
 * - PUT → `/v3/kv/put`.
 * - GET default and `?consistent` → linearizable `/v3/kv/range` (ReadIndex through the leader);
 *   `?stale` → `serializable: true` (the member's local state, like a stale read).
 * - CAS → linearizable range for `mod_revision`, then `/v3/kv/txn` comparing it (Consul's
 *   `?cas=ModifyIndex`); `succeeded` absent is the gateway's spelling of `false`.
 * - Sessions → leases: `/v3/lease/grant`, renewal by one `/v3/lease/keepalive` round
 *   (the gateway accepts one message per POST), destroy by `/v3/lease/revoke` (keys go with it,
 *   like Consul's `Behavior: delete`).
 * - acquire → a txn putting the key with the lease only if it does not exist or already carries
 *   this lease (Consul's "free, or held by the same session").
 * - Watchers → the streaming `/v3/watch` endpoint, one HTTP stream per watcher: what any etcd
 *   client does. A range loop polling `min_mod_revision` would add a poll interval to every
 *   wake-up and measure the poll period, not etcd.
 */

/** Back-off after a failed watch stream before re-creating it. */
const WATCH_ERROR_BACKOFF_MS = 200;
/** Bound on a buffered, not yet newline-terminated watch message: larger means a broken stream. */
const WATCH_LINE_BYTES_MAX = 16 * 1024 * 1024;

const READ_SERIALIZABLE: Readonly<Record<ReadMode, boolean>> = { default: false, consistent: false, stale: true };

/** Builds an adapter on one etcd client URL per member. */
export function etcdTarget(options: HttpEndpointsOptions): KvTarget {
  return new EtcdTarget(new HttpEndpoints(options));
}

function base64(text: string): string {
  return Buffer.from(text, 'latin1').toString('base64');
}

function unbase64(text: string): string {
  return Buffer.from(text, 'base64').toString('latin1');
}

/** etcd's range_end for "every key with this prefix": the prefix with its last byte plus one. */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'latin1');
  for (let index = bytes.length - 1; index >= 0; index--) {
    const byte = bytes[index] ?? 0;
    if (byte < 0xff) {
      const end = bytes.subarray(0, index + 1);
      end[index] = byte + 1;
      return end.toString('latin1');
    }
  }
  return '\0'; // every key
}

class EtcdTarget implements KvTarget {
  readonly protocol = 'etcd';
  readonly #http: HttpEndpoints;

  constructor(http: HttpEndpoints) {
    this.#http = http;
  }

  get endpointCount(): number {
    return this.#http.count;
  }

  async put(endpoint: number, key: string, value: string): Promise<OpResult> {
    const reply = await this.#post(endpoint, '/v3/kv/put', { key: base64(key), value: base64(value) });
    return reply.ok ? { ok: true } : reply;
  }

  async get(endpoint: number, key: string, mode: ReadMode, valueBytes: number): Promise<OpResult> {
    const read = await this.#readOne(endpoint, key, READ_SERIALIZABLE[mode]);
    if (!read.ok) return read;
    if (Buffer.byteLength(unbase64(read.value), 'latin1') !== valueBytes) return { ok: false, error: 'body:wrong-value-size' };
    return { ok: true };
  }

  async cas(endpoint: number, key: string, value: string): Promise<CasResult> {
    const read = await this.#readOne(endpoint, key, false);
    if (!read.ok) return read;
    const reply = await this.#post(endpoint, '/v3/kv/txn', {
      compare: [{ key: base64(key), target: 'MOD', result: 'EQUAL', mod_revision: read.modRevision }],
      success: [{ request_put: { key: base64(key), value: base64(value) } }],
    });
    if (!reply.ok) return reply;
    return { ok: true, swapped: reply.body['succeeded'] === true };
  }

  async createSession(endpoint: number, ttlSeconds: number): Promise<SessionResult> {
    const reply = await this.#post(endpoint, '/v3/lease/grant', { TTL: String(ttlSeconds) });
    if (!reply.ok) return reply;
    const id = reply.body['ID'];
    if (typeof id !== 'string' || id === '0' || id === '') return { ok: false, error: 'body:no-lease-id' };
    return { ok: true, id };
  }

  async renewSession(endpoint: number, sessionId: string): Promise<OpResult> {
    const reply = await this.#post(endpoint, '/v3/lease/keepalive', { ID: sessionId });
    if (!reply.ok) return reply;
    const result = reply.body['result'];
    if (!isRecord(result) || result['ID'] !== sessionId) return { ok: false, error: 'body:wrong-lease' };
    // An expired lease answers with no TTL (proto3 omits the 0).
    if (typeof result['TTL'] !== 'string' || !(Number(result['TTL']) > 0)) return { ok: false, error: 'body:lease-expired' };
    return { ok: true };
  }

  async destroySession(endpoint: number, sessionId: string): Promise<OpResult> {
    const reply = await this.#post(endpoint, '/v3/lease/revoke', { ID: sessionId });
    return reply.ok ? { ok: true } : reply;
  }

  async acquire(endpoint: number, key: string, sessionId: string, value: string): Promise<OpResult> {
    const encodedKey = base64(key);
    const put = { request_put: { key: encodedKey, value: base64(value), lease: sessionId } };
    // Held by this lease already (the common case after the first acquire): overwrite.
    const held = await this.#post(endpoint, '/v3/kv/txn', {
      compare: [{ key: encodedKey, target: 'LEASE', result: 'EQUAL', lease: sessionId }], success: [put],
    });
    if (!held.ok) return held;
    if (held.body['succeeded'] === true) return { ok: true };
    const free = await this.#post(endpoint, '/v3/kv/txn', {
      compare: [{ key: encodedKey, target: 'CREATE', result: 'EQUAL', create_revision: '0' }], success: [put],
    });
    if (!free.ok) return free;
    return free.body['succeeded'] === true ? { ok: true } : { ok: false, error: 'body:false' };
  }

  async deletePrefix(endpoint: number, prefix: string): Promise<OpResult> {
    const reply = await this.#post(endpoint, '/v3/kv/deleterange', { key: base64(prefix), range_end: base64(prefixRangeEnd(prefix)) });
    return reply.ok ? { ok: true } : reply;
  }

  async watchPrefix(endpoint: number, prefix: string, events: WatchEvents, signal: AbortSignal): Promise<void> {
    let ready = false;
    const onCreated = (): void => {
      if (!ready) events.onReady();
      ready = true;
    };
    while (!signal.aborted) {
      const error = await this.#watchStream(endpoint, prefix, events, onCreated, signal);
      if (signal.aborted) return;
      events.onError(error);
      await sleep(WATCH_ERROR_BACKOFF_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    await this.#http.close();
  }

  /** One watch stream from "now" until it fails; returns why it ended. */
  async #watchStream(endpoint: number, prefix: string, events: WatchEvents, onCreated: () => void, signal: AbortSignal): Promise<string> {
    const body = JSON.stringify({ create_request: { key: base64(prefix), range_end: base64(prefixRangeEnd(prefix)) } });
    try {
      const response = await this.#http.watchPool(endpoint).request({ method: 'POST', path: '/v3/watch', body, signal });
      if (response.statusCode !== 200) {
        await response.body.text();
        return `status:${response.statusCode}`;
      }
      let pending = '';
      for await (const chunk of response.body) {
        const receivedAtMs = performance.now();
        pending += (chunk as Buffer).toString('latin1');
        if (pending.length > WATCH_LINE_BYTES_MAX) return 'watch:line-too-long';
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (line !== '') {
            const failure = handleWatchLine(line, events, onCreated, receivedAtMs);
            if (failure !== undefined) return failure;
          }
          newline = pending.indexOf('\n');
        }
      }
      return 'watch:stream-ended';
    } catch (error) {
      return transportErrorKind(error);
    }
  }

  async #readOne(endpoint: number, key: string, serializable: boolean):
    Promise<{ ok: true; value: string; modRevision: string } | { ok: false; error: string }> {
    const reply = await this.#post(endpoint, '/v3/kv/range', serializable ? { key: base64(key), serializable: true } : { key: base64(key) });
    if (!reply.ok) return reply;
    const kvs = reply.body['kvs'];
    if (!Array.isArray(kvs) || kvs.length !== 1) return { ok: false, error: 'body:not-one-entry' };
    const kv: unknown = kvs[0];
    if (!isRecord(kv) || kv['key'] !== base64(key)) return { ok: false, error: 'body:wrong-key' };
    const value = kv['value'];
    const modRevision = kv['mod_revision'];
    if (typeof value !== 'string') return { ok: false, error: 'body:no-value' };
    if (typeof modRevision !== 'string' || !(Number(modRevision) > 0)) return { ok: false, error: 'body:no-mod-revision' };
    return { ok: true, value, modRevision };
  }

  /** POSTs a JSON request; success is a 200 whose JSON body carries a response header. */
  async #post(endpoint: number, path: string, request: unknown): Promise<{ ok: true; body: Record<string, unknown> } | { ok: false; error: string }> {
    const reply: HttpReply | { readonly error: string } = await this.#http.request(endpoint, 'POST', path, JSON.stringify(request));
    if ('error' in reply) return { ok: false, error: reply.error };
    if (reply.status !== 200) return { ok: false, error: statusError(reply) };
    const body = parseJson(reply.text);
    if (!isRecord(body)) return { ok: false, error: 'body:not-json-object' };
    const header = isRecord(body['result']) ? body['result']['header'] : body['header'];
    if (!isRecord(header) || typeof header['revision'] !== 'string') return { ok: false, error: 'body:no-header' };
    return { ok: true, body };
  }
}

/** Handles one line of the watch stream; returns an error kind if the stream must be re-created. */
function handleWatchLine(line: string, events: WatchEvents, onCreated: () => void, receivedAtMs: number): string | undefined {
  const message = parseJson(line);
  if (!isRecord(message)) return 'watch:not-json';
  const result = message['result'];
  if (!isRecord(result)) return isRecord(message['error']) || typeof message['error'] === 'string' ? 'watch:error' : 'watch:no-result';
  if (result['canceled'] === true) return 'watch:canceled';
  if (result['created'] === true) onCreated();
  const changes = result['events'];
  if (!Array.isArray(changes)) return undefined;
  const values: string[] = [];
  for (const change of changes) {
    if (!isRecord(change) || change['type'] === 'DELETE') continue;
    const kv = change['kv'];
    if (isRecord(kv) && typeof kv['value'] === 'string') values.push(unbase64(kv['value']));
  }
  if (values.length > 0) events.onChanges(values, receivedAtMs);
  return undefined;
}
