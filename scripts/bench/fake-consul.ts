import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';

/**
 * STAND-IN, NOT CONCLAVE. A tiny single-process, in-memory server shaped like Consul's KV and
 * session API (consul-api.md §3, §4, §6, §9), so the harness can be built and tested before the
 * real agent's CLI exists. No Raft, no disk, no replication: its numbers only show the harness
 * works and what a do-nothing Consul-shaped server costs. Reports label it `fake-consul (stand-in)`.
 * Fault injection (tests) makes it answer wrongly on purpose, to prove errors are counted.
 * Run alone: node build/scripts/bench/fake-consul.js --port 8500 (prints the port when listening).
 */

/** Wrong answers to inject, every Nth request of the kind (0 or absent = never). */
export interface FakeConsulFaults {
  /** Any request answers 500. */
  readonly status500Every?: number;
  /** A successful KV PUT answers `false` instead of `true`. */
  readonly putFalseEvery?: number;
  /** A KV GET of one key answers an entry with a different key. */
  readonly wrongKeyEvery?: number;
}

/** Where to listen and what to break. */
export interface FakeConsulOptions {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly faults?: FakeConsulFaults;
}

/** A running stand-in. */
export interface FakeConsul {
  readonly port: number;
  readonly url: string;
  /** Replaces the injected faults (counting restarts): lets a test write its keys first, then break. */
  setFaults(faults: FakeConsulFaults): void;
  close(): Promise<void>;
}

interface Entry {
  readonly key: string;
  value: Buffer | null;
  flags: string;
  session: string;
  lockIndex: number;
  readonly createIndex: number;
  modifyIndex: number;
}

interface Session {
  readonly id: string;
  readonly ttl: string;
  readonly ttlMs: number;
  readonly behavior: 'release' | 'delete';
  readonly createIndex: number;
  expiresAtMs: number;
}

interface Waiter {
  readonly key: string;
  readonly recurse: boolean;
  readonly wake: () => void;
}

/** Consul clamps waits to 10 min; the stand-in to 5 min, far above any bench wait. */
const WAIT_MS_MAX = 5 * 60_000;
/** Bounded like Consul's kv_max_value_size. */
const BODY_BYTES_MAX = 512 * 1024;

/** The in-memory state and request handling of the stand-in. */
class FakeConsulState {
  readonly #entries = new Map<string, Entry>();
  readonly #tombstones = new Map<string, number>();
  readonly #sessions = new Map<string, Session>();
  readonly #waiters = new Set<Waiter>();
  #faults: FakeConsulFaults;
  #counters = { requests: 0, puts: 0, gets: 0 };
  #index = 1;
  raftAddress = '127.0.0.1:8300';

  constructor(faults: FakeConsulFaults) {
    this.#faults = faults;
  }

  setFaults(faults: FakeConsulFaults): void {
    this.#faults = faults;
    this.#counters = { requests: 0, puts: 0, gets: 0 };
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://fake');
    const body = await readBody(request);
    this.#counters.requests++;
    if (isNth(this.#faults.status500Every, this.#counters.requests)) return text(response, 500, 'injected fault');
    const path = url.pathname;
    if (path.startsWith('/v1/kv/')) return this.#kv(request.method ?? 'GET', decodeURIComponent(path.slice('/v1/kv/'.length)), url.searchParams, body, response);
    if (path === '/v1/session/create' && request.method === 'PUT') return this.#sessionCreate(body, response);
    if (path.startsWith('/v1/session/renew/') && request.method === 'PUT') return this.#sessionRenew(decodeURIComponent(path.slice('/v1/session/renew/'.length)), response);
    if (path.startsWith('/v1/session/destroy/') && request.method === 'PUT') {
      this.#destroySession(decodeURIComponent(path.slice('/v1/session/destroy/'.length)));
      return json(response, 200, true);
    }
    if (path === '/v1/status/leader') return json(response, 200, this.raftAddress);
    if (path === '/v1/status/peers') return json(response, 200, [this.raftAddress]);
    return text(response, 404, 'Invalid URL path: not a recognized HTTP API endpoint\n');
  }

  async #kv(method: string, key: string, query: URLSearchParams, body: Buffer, response: ServerResponse): Promise<void> {
    if (method === 'GET') return this.#kvGet(key, query, response);
    if (method === 'DELETE') {
      for (const entry of [...this.#entries.values()]) {
        if (query.has('recurse') ? entry.key.startsWith(key) : entry.key === key) this.#delete(entry.key);
      }
      return json(response, 200, true);
    }
    if (method !== 'PUT') return text(response, 405, `method ${method} not allowed`);
    this.#counters.puts++;
    const written = this.#kvPut(key, query, body);
    if (typeof written === 'string') return text(response, 500, written);
    const answer = written && !isNth(this.#faults.putFalseEvery, this.#counters.puts);
    return json(response, 200, answer);
  }

  #kvPut(key: string, query: URLSearchParams, body: Buffer): boolean | string {
    const existing = this.#entries.get(key);
    const cas = query.get('cas');
    if (cas !== null && (existing?.modifyIndex ?? 0) !== Number(cas)) return false;
    const acquire = query.get('acquire');
    const release = query.get('release');
    let session = existing?.session ?? '';
    let lockIndex = existing?.lockIndex ?? 0;
    if (acquire !== null) {
      const owner = this.#liveSession(acquire);
      if (owner === undefined) return `invalid session "${acquire}"`;
      if (session !== '' && session !== acquire) return false;
      if (session !== acquire) lockIndex++;
      session = acquire;
    } else if (release !== null) {
      if (session !== release) return false;
      session = '';
    }
    const index = ++this.#index;
    const value = body.length === 0 ? null : body;
    const flags = query.get('flags') ?? '0';
    if (existing === undefined) {
      this.#entries.set(key, { key, value, flags, session, lockIndex, createIndex: index, modifyIndex: index });
    } else {
      Object.assign(existing, { value, flags, session, lockIndex, modifyIndex: index });
    }
    this.#notify(key);
    return true;
  }

  async #kvGet(key: string, query: URLSearchParams, response: ServerResponse): Promise<void> {
    this.#counters.gets++;
    const recurse = query.has('recurse');
    const minIndex = Number(query.get('index') ?? '0');
    if (minIndex > 0 && this.#keyIndex(key, recurse) <= minIndex) {
      await this.#block(key, recurse, minIndex, parseWaitMs(query.get('wait')));
    }
    const matching = recurse
      ? [...this.#entries.values()].filter((entry) => entry.key.startsWith(key)).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      : [this.#entries.get(key)].filter((entry): entry is Entry => entry !== undefined);
    response.setHeader('X-Consul-Index', String(Math.max(1, this.#keyIndex(key, recurse))));
    response.setHeader('X-Consul-KnownLeader', 'true');
    response.setHeader('X-Consul-LastContact', '0');
    if (matching.length === 0) return text(response, 404, '');
    const wrongKey = !recurse && isNth(this.#faults.wrongKeyEvery, this.#counters.gets);
    return json(response, 200, matching.map((entry) => ({
      LockIndex: entry.lockIndex,
      Key: wrongKey ? `${entry.key}-wrong` : entry.key,
      Flags: Number(entry.flags),
      Value: entry.value === null ? null : entry.value.toString('base64'),
      ...(entry.session === '' ? {} : { Session: entry.session }),
      CreateIndex: entry.createIndex,
      ModifyIndex: entry.modifyIndex,
    })));
  }

  /** §3: a key's ModifyIndex; a prefix's highest live or tombstone index; else the whole KV index. */
  #keyIndex(key: string, recurse: boolean): number {
    if (!recurse) return this.#entries.get(key)?.modifyIndex ?? this.#index; // O(1) on the hot path
    let highest = 0;
    for (const entry of this.#entries.values()) {
      if (entry.key.startsWith(key)) highest = Math.max(highest, entry.modifyIndex);
    }
    for (const [tombstone, index] of this.#tombstones) {
      if (tombstone.startsWith(key)) highest = Math.max(highest, index);
    }
    return highest === 0 ? this.#index : highest;
  }

  async #block(key: string, recurse: boolean, minIndex: number, waitMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const waiter: Waiter = {
        key,
        recurse,
        wake: () => {
          if (this.#keyIndex(key, recurse) <= minIndex) return; // not our key's change yet
          this.#waiters.delete(waiter);
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        resolve();
      }, waitMs);
      this.#waiters.add(waiter);
    });
  }

  #notify(key: string): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.recurse ? key.startsWith(waiter.key) : key === waiter.key) waiter.wake();
    }
  }

  #delete(key: string): void {
    if (!this.#entries.delete(key)) return;
    this.#tombstones.set(key, ++this.#index);
    this.#notify(key);
  }

  #sessionCreate(body: Buffer, response: ServerResponse): void {
    const parsed: unknown = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
    const fields = typeof parsed === 'object' && parsed !== null ? parsed as Record<string, unknown> : {};
    const ttl = typeof fields['TTL'] === 'string' ? fields['TTL'] : '';
    const ttlMs = parseWaitMs(ttl === '' ? null : ttl);
    const id = randomUUID();
    const index = ++this.#index;
    this.#sessions.set(id, {
      id, ttl, ttlMs: ttl === '' ? 0 : ttlMs, behavior: fields['Behavior'] === 'delete' ? 'delete' : 'release', createIndex: index,
      expiresAtMs: Date.now() + 2 * ttlMs,
    });
    json(response, 200, { ID: id });
  }

  #sessionRenew(id: string, response: ServerResponse): void {
    const session = this.#liveSession(id);
    if (session === undefined) return text(response, 404, `Session id '${id}' not found`);
    session.expiresAtMs = Date.now() + 2 * session.ttlMs;
    json(response, 200, [{
      ID: session.id, Name: 'conclave-bench', Node: 'fake', LockDelay: 1_000_000, Behavior: session.behavior, TTL: session.ttl,
      NodeChecks: ['serfHealth'], ServiceChecks: null, CreateIndex: session.createIndex, ModifyIndex: session.createIndex,
    }]);
  }

  /** The session if it exists and has not expired (2 × TTL after its last renew, checked lazily). */
  #liveSession(id: string): Session | undefined {
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    if (session.ttlMs > 0 && Date.now() > session.expiresAtMs) {
      this.#destroySession(id);
      return undefined;
    }
    return session;
  }

  #destroySession(id: string): void {
    const session = this.#sessions.get(id);
    if (session === undefined) return;
    this.#sessions.delete(id);
    for (const entry of [...this.#entries.values()]) {
      if (entry.session !== id) continue;
      if (session.behavior === 'delete') {
        this.#delete(entry.key);
      } else {
        entry.session = '';
        entry.modifyIndex = ++this.#index;
        this.#notify(entry.key);
      }
    }
  }
}

function isNth(every: number | undefined, count: number): boolean {
  return every !== undefined && every > 0 && count % every === 0;
}

/** Go durations as the bench sends them (`15s`, `10s`, `1ms`); a missing wait is Consul's 5 min. */
function parseWaitMs(wait: string | null): number {
  if (wait === null || wait === '') return WAIT_MS_MAX;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(wait);
  if (match === null) return WAIT_MS_MAX;
  const amount = Number(match[1]);
  const unitMs = match[2] === 'ms' ? 1 : match[2] === 's' ? 1000 : 60_000;
  return Math.min(WAIT_MS_MAX, amount * unitMs);
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of request) {
    bytes += (chunk as Buffer).length;
    if (bytes > BODY_BYTES_MAX) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function json(response: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  response.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function text(response: ServerResponse, status: number, body: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/** Starts the stand-in in this process. */
export async function startFakeConsul(options: FakeConsulOptions = {}): Promise<FakeConsul> {
  const state = new FakeConsulState(options.faults ?? {});
  const server: Server = createServer((request, response) => {
    state.handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) text(response, 500, error instanceof Error ? error.message : 'error');
      else response.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  state.raftAddress = `${host}:${port}`;
  return {
    port,
    url: `http://${host}:${port}`,
    setFaults: (faults) => state.setFaults(faults),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--port');
  const fake = await startFakeConsul({ port: at === -1 ? 0 : Number(process.argv[at + 1]) });
  process.stdout.write(`listening ${fake.port}\n`);
  const stop = (): void => { void fake.close().then(() => process.exit(0)); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
