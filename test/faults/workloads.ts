import type { Agent } from 'undici';
import { Prng } from '../../src/lib/prng.js';
import type { History, ReadMode, SeenEntry } from './history.js';
import { decodeValue, delay, httpCall, parseEntries, recordedCall, writeCompletion } from './http-ops.js';
import type { Classified, HttpResult } from './http-ops.js';

/**
 * The workloads of RELIABILITY.md (Tier 2 and 3), each a loop run by one simulated client
 * ("proc") against one agent, recording every call in the History:
 * - register: hot keys, GETs in all three modes, unique-valued PUTs, `?cas` from an earlier
 *   read (or `?cas=0`), a few DELETEs; a fresh key set every `keyEvery` operations;
 * - set: unique keys under a prefix; a final `?consistent&recurse` read finds lost ones;
 * - lock: sessions (TTL, lock-delay, background renewal), `?acquire`, a consistent read of the
 *   LockIndex (the fencing token), a write to a resource that rejects stale tokens, `?release`,
 *   and sometimes a session destroy while holding (so lock-delay must hold off the next holder);
 * - watch: blocking GETs (`?index=&wait=`) on the register keys of the current generation, one
 *   key or the generation's prefix (`?recurse`), each watcher pinned to one agent and one mode.
 */
export interface WorkloadContext {
  readonly history: History;
  readonly dispatcher: Agent;
  /** HTTP base URL of an agent by name, or null when it is not running (calls then still go out). */
  readonly url: (node: string) => string;
  readonly runId: string;
  readonly stop: { done: boolean };
}

// ---------------------------------------------------------------------------------------------
// register

export interface RegisterOptions {
  readonly keys: number;
  /** Operations (all clients together) per key generation. */
  readonly keyEvery: number;
  readonly timeoutMs: number;
  readonly thinkMs: number;
  /** Modes of GETs, picked uniformly (repeat one to weigh it). */
  readonly readModes: readonly ReadMode[];
}

/** Shared by the register clients of one run: the op counter that moves to fresh keys. */
export interface RegisterShared {
  ops: number;
}

/** The keys of one register generation share this prefix (the trailing `/` keeps g1 from matching g10). */
export function registerPrefix(runId: string, generation: number): string {
  return `reg/${runId}/g${generation}/`;
}

export function registerKey(runId: string, generation: number, k: number): string {
  return `${registerPrefix(runId, generation)}k${k}`;
}

/** The generation the register clients write now (they move on every `keyEvery` operations). */
export function registerGeneration(shared: RegisterShared, keyEvery: number): number {
  return Math.floor(shared.ops / keyEvery);
}

export async function registerClient(context: WorkloadContext, proc: string, node: string, seed: number, options: RegisterOptions, shared: RegisterShared): Promise<void> {
  const { history, dispatcher } = context;
  const prng = new Prng(seed);
  const lastIndex = new Map<string, number>();
  let serial = 0;
  while (!context.stop.done) {
    const generation = registerGeneration(shared, options.keyEvery);
    shared.ops++;
    const key = registerKey(context.runId, generation, prng.nextInt(options.keys));
    const base = `${context.url(node)}/v1/kv/${key}`;
    const roll = prng.nextInt(100);
    let result: HttpResult;
    if (roll < 45) {
      const mode = prng.pick(options.readModes);
      const op = history.invoke(proc, 'read', key, null, node, mode);
      const query = mode === 'consistent' ? '?consistent' : mode === 'stale' ? '?stale' : '';
      result = await recordedCall(history, op, dispatcher, base + query, 'GET', null, options.timeoutMs, (r) => classifyRead(key, r));
      if (op.type === 'ok' && op.index !== null) lastIndex.set(key, op.index);
    } else if (roll < 75) {
      serial++;
      const value = `${proc}-${serial}`;
      const op = history.invoke(proc, 'write', key, value, node);
      result = await recordedCall(history, op, dispatcher, base, 'PUT', value, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
    } else if (roll < 95) {
      serial++;
      const value = `${proc}-${serial}`;
      const cas = prng.chance(0.15) ? 0 : (lastIndex.get(key) ?? 0);
      const op = history.invoke(proc, 'cas', key, value, node, null, cas);
      result = await recordedCall(history, op, dispatcher, `${base}?cas=${cas}`, 'PUT', value, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
    } else {
      const cas = prng.chance(0.5) ? (lastIndex.get(key) ?? null) : null;
      const op = history.invoke(proc, 'delete', key, null, node, null, cas);
      result = await recordedCall(history, op, dispatcher, cas === null ? base : `${base}?cas=${cas}`, 'DELETE', null, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
    }
    // Back off a little when the agent is down or busy, so a dead agent is not hammered.
    const failed = result.kind === 'error' || result.status >= 500;
    await delay(failed ? 100 + prng.nextInt(100) : prng.nextInt(options.thinkMs + 1));
  }
}

/** A GET's history outcome: 200 (value, ModifyIndex) and 404 are `ok`; anything else `fail`. */
function classifyRead(key: string, result: HttpResult): Classified {
  if (result.kind !== 'reply') return { type: 'fail' };
  if (result.status === 404) return { type: 'ok', index: null, value: null };
  if (result.status !== 200) return { type: 'fail' };
  const entries = parseEntries(result.body);
  const entry = entries?.[0];
  if (entries === null || entries.length !== 1 || entry === undefined || entry.Key !== key) {
    throw new Error(`GET ${key}: 200 with an unexpected body ${result.body.slice(0, 200)}`);
  }
  return { type: 'ok', index: entry.ModifyIndex, value: decodeValue(entry.Value) };
}

// ---------------------------------------------------------------------------------------------
// set

export interface SetOptions {
  readonly timeoutMs: number;
  readonly thinkMs: number;
}

export function setPrefix(runId: string): string {
  return `set/${runId}/`;
}

export async function setClient(context: WorkloadContext, proc: string, node: string, seed: number, options: SetOptions): Promise<void> {
  const prng = new Prng(seed);
  let serial = 0;
  while (!context.stop.done) {
    serial++;
    const key = `${setPrefix(context.runId)}${proc}-${String(serial).padStart(6, '0')}`;
    const op = context.history.invoke(proc, 'add', key, 'x', node);
    const result = await recordedCall(context.history, op, context.dispatcher, `${context.url(node)}/v1/kv/${key}`, 'PUT', 'x', options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
    const failed = result.kind === 'error' || result.status >= 500;
    await delay(failed ? 100 + prng.nextInt(100) : prng.nextInt(options.thinkMs + 1));
  }
}

// ---------------------------------------------------------------------------------------------
// lock

export interface LockOptions {
  readonly keys: number;
  readonly ttlS: number;
  readonly lockDelayS: number;
  readonly timeoutMs: number;
  /** Probability of destroying the session instead of releasing the lock. */
  readonly destroyChance: number;
  readonly holdMs: number;
}

export function lockKey(runId: string, k: number): string {
  return `lock/${runId}/l${k}`;
}

/**
 * The fenced resource: it remembers the highest token (LockIndex) each lock key has shown and
 * rejects lower ones. A correct lock never makes it reject anything (L3).
 */
export class FencedResource {
  readonly #max = new Map<string, number>();
  stale = 0;
  accepted = 0;

  write(key: string, token: number): boolean {
    const max = this.#max.get(key) ?? 0;
    if (token < max) {
      this.stale++;
      return false;
    }
    this.#max.set(key, token);
    this.accepted++;
    return true;
  }
}

interface SessionState {
  readonly id: string;
  gone: boolean;
  renewer: NodeJS.Timeout | null;
}

export async function lockClient(context: WorkloadContext, proc: string, node: string, seed: number, options: LockOptions, resource: FencedResource): Promise<void> {
  const { history, dispatcher } = context;
  const prng = new Prng(seed);
  const base = context.url(node);
  let session: SessionState | null = null;
  const dropSession = (): void => {
    if (session?.renewer != null) clearInterval(session.renewer);
    session = null;
  };
  try {
    while (!context.stop.done) {
      if (session === null || session.gone) {
        dropSession();
        session = await createSession(context, proc, node, options);
        if (session === null) {
          await delay(200 + prng.nextInt(200));
          continue;
        }
      }
      const current: SessionState = session;
      const key = lockKey(context.runId, prng.nextInt(options.keys));
      const acquire = history.invoke(proc, 'acquire', key, current.id, node);
      const result = await recordedCall(history, acquire, dispatcher, `${base}/v1/kv/${key}?acquire=${current.id}`, 'PUT', proc, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
      const granted = acquire.type === 'ok' && result.kind === 'reply' && result.body.trim() === 'true';
      if (acquire.type === 'ok' && !granted) {
        await delay(50 + prng.nextInt(100));
        continue;
      }
      if (acquire.type === 'fail') {
        await delay(100 + prng.nextInt(100));
        continue;
      }
      // Granted or unknown: read who holds it (the LockIndex is the fencing token).
      const read = history.invoke(proc, 'lock-read', key, current.id, node, 'consistent');
      await recordedCall(history, read, dispatcher, `${base}/v1/kv/${key}?consistent`, 'GET', null, options.timeoutMs, (r) => classifyLockRead(r));
      const holder = read.data?.['session'] ?? null;
      const holding = read.type === 'ok' && holder === current.id;
      if (holding) {
        const token = Number(read.data?.['lockIndex']);
        const fence = history.invoke(proc, 'fence', key, current.id, 'resource');
        const accepted = resource.write(key, token);
        history.complete(fence, 'ok', { data: { token, accepted } });
        await delay(prng.nextInt(options.holdMs + 1));
      }
      if (!holding && read.type === 'ok') continue; // not ours (an unknown acquire that did not land)
      if (prng.chance(options.destroyChance)) {
        // Walk away without releasing: the session's invalidation must hold the key for lock-delay.
        await destroySession(context, proc, node, current, options);
        dropSession();
        continue;
      }
      // Release (also after an unresolved read: release is a no-op if we do not hold it).
      for (let attempt = 0; attempt < 5 && !context.stop.done; attempt++) {
        const release = history.invoke(proc, 'release', key, current.id, node);
        await recordedCall(history, release, dispatcher, `${base}/v1/kv/${key}?release=${current.id}`, 'PUT', proc, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
        if (release.type === 'ok') break;
        await delay(200);
      }
      await delay(prng.nextInt(50));
    }
  } finally {
    if (session !== null) {
      const last: SessionState = session;
      dropSession();
      // Let go of the locks at the end so the final checks see free keys.
      await destroySession(context, proc, node, last, options);
    }
  }
}

function classifyLockRead(result: HttpResult): Classified {
  if (result.kind !== 'reply') return { type: 'fail' };
  if (result.status === 404) return { type: 'ok', index: null, data: { session: null, lockIndex: 0 } };
  if (result.status !== 200) return { type: 'fail' };
  const entry = parseEntries(result.body)?.[0];
  if (entry === undefined) return { type: 'fail' };
  return { type: 'ok', index: entry.ModifyIndex, data: { session: entry.Session ?? null, lockIndex: entry.LockIndex, modifyIndex: entry.ModifyIndex } };
}

async function createSession(context: WorkloadContext, proc: string, node: string, options: LockOptions): Promise<SessionState | null> {
  const body = JSON.stringify({ Name: proc, TTL: `${options.ttlS}s`, LockDelay: `${options.lockDelayS}s`, NodeChecks: [], Behavior: 'release' });
  const op = context.history.invoke(proc, 'session-create', '', null, node);
  const result = await recordedCall(context.history, op, context.dispatcher, `${context.url(node)}/v1/session/create`, 'PUT', body, options.timeoutMs, (r) => {
    const type = writeCompletion(r);
    if (type !== 'ok' || r.kind !== 'reply') return { type };
    return { type, value: (JSON.parse(r.body) as { ID: string }).ID };
  });
  if (op.type !== 'ok' || result.kind !== 'reply') return null;
  const id = (JSON.parse(result.body) as { ID: string }).ID;
  const state: SessionState = { id, gone: false, renewer: null };
  state.renewer = setInterval(() => void renewSession(context, proc, node, state, options), (options.ttlS * 1000) / 3);
  return state;
}

async function renewSession(context: WorkloadContext, proc: string, node: string, session: SessionState, options: LockOptions): Promise<void> {
  if (session.gone || context.stop.done) return;
  const op = context.history.invoke(proc, 'session-renew', '', session.id, node);
  const result = await recordedCall(context.history, op, context.dispatcher, `${context.url(node)}/v1/session/renew/${session.id}`, 'PUT', null, options.timeoutMs, (r): Classified => (
    r.kind === 'reply' && r.status === 404 ? { type: 'ok', data: { gone: true } } : { type: writeCompletion(r) }
  ));
  if (result.kind === 'reply' && result.status === 404) session.gone = true;
}

async function destroySession(context: WorkloadContext, proc: string, node: string, session: SessionState, options: LockOptions): Promise<void> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const op = context.history.invoke(proc, 'session-destroy', '', session.id, node);
    await recordedCall(context.history, op, context.dispatcher, `${context.url(node)}/v1/session/destroy/${session.id}`, 'PUT', null, options.timeoutMs, (r) => ({ type: writeCompletion(r) }));
    if (op.type === 'ok') return;
    await delay(300);
  }
}

// ---------------------------------------------------------------------------------------------
// watch

/** What one watcher watches, and how. */
export interface WatchSpec {
  /** The register key (of the current generation) a single-key watcher follows. */
  readonly k: number;
  /** Follow the whole current generation (`?recurse` on its prefix) instead of one key. */
  readonly recurse: boolean;
  readonly mode: ReadMode;
}

export interface WatchOptions {
  /** `?wait=` in seconds. */
  readonly waitS: number;
  /** The client's timeout: above the longest hold Consul allows (wait × 1.0625) plus a margin. */
  readonly timeoutMs: number;
}

/** Watchers outlive the writers (they must converge on the final values): their own stop. */
export interface WatchStop {
  done: boolean;
  /** Cancels the blocking GETs in flight once `done`, so the end of a run never waits out a wait. */
  readonly abort: AbortController;
}

/** Single keys and prefixes, default and stale: the layouts watchers cycle through. */
const WATCH_LAYOUTS: readonly Omit<WatchSpec, 'k'>[] = [
  { recurse: false, mode: 'default' },
  { recurse: false, mode: 'stale' },
  { recurse: true, mode: 'default' },
  { recurse: true, mode: 'stale' },
  { recurse: false, mode: 'consistent' },
];

/** The spec of watcher number `w`: layouts in turn, single keys spread over the generation's keys. */
export function watchSpec(w: number, keys: number): WatchSpec {
  return { ...(WATCH_LAYOUTS[w % WATCH_LAYOUTS.length] as Omit<WatchSpec, 'k'>), k: w % keys };
}

/**
 * A watcher: loops `GET /v1/kv/<key or prefix>?index=<last X-Consul-Index>&wait=<waitS>s` against
 * its one agent, following the register generations: when the writers move on, the blocking GET
 * on the old generation is cancelled (nothing will wake it) and a new query starts from index 0,
 * which answers at once. Like Consul's Go client it blocks on whatever index the last answer
 * carried. Every response goes into the history with its X-Consul-Index and entries.
 */
export async function watchClient(context: WorkloadContext, proc: string, node: string, seed: number, spec: WatchSpec, options: WatchOptions,
  register: { readonly shared: RegisterShared; readonly keyEvery: number }, stop: WatchStop): Promise<void> {
  const prng = new Prng(seed);
  let query = '';
  let index = 0;
  while (!stop.done) {
    const generation = registerGeneration(register.shared, register.keyEvery);
    const target = spec.recurse ? registerPrefix(context.runId, generation) : registerKey(context.runId, generation, spec.k);
    if (target !== query) {
      query = target;
      index = 0;
    }
    const params: string[] = [];
    if (spec.recurse) params.push('recurse');
    if (spec.mode !== 'default') params.push(spec.mode);
    if (index > 0) params.push(`index=${index}`, `wait=${options.waitS}s`);
    const data = { minIndex: index, recurse: spec.recurse };
    const op = context.history.invoke(proc, 'watch', query, null, node, spec.mode);
    const url = `${context.url(node)}/v1/kv/${query}${params.length === 0 ? '' : `?${params.join('&')}`}`;
    const moved = (): boolean => registerGeneration(register.shared, register.keyEvery) !== generation;
    const { result, cancelled } = await cancellableGet(context, url, options.timeoutMs, stop, moved);
    if (result.kind === 'error') {
      // A read changes nothing: an error is `fail`, a cancellation `info` (no answer, no verdict).
      const why = stop.done ? 'cancelled: the run is over' : 'cancelled: the writers moved to a new generation';
      context.history.complete(op, cancelled ? 'info' : 'fail', { body: cancelled ? why : result.message, data });
      if (!cancelled) await delay(100 + prng.nextInt(100));
      continue;
    }
    if (result.status !== 200 && result.status !== 404) {
      context.history.complete(op, 'fail', { status: result.status, body: result.body, outcome: result.outcome, data });
      await delay(100 + prng.nextInt(100));
      continue;
    }
    const entries = result.status === 404 ? [] : watchEntries(query, spec.recurse, result.body);
    context.history.complete(op, 'ok', { status: result.status, index: result.index, data, entries });
    const advanced = result.index !== null && result.index > index;
    if (result.index !== null && result.index > 0) index = result.index;
    // The wait ran out, or the index went back: no busy loop against one agent.
    if (!advanced) await delay(50);
  }
}

/** A GET cancelled when the run stops or `moved()` turns true (checked every 50 ms). */
async function cancellableGet(context: WorkloadContext, url: string, timeoutMs: number, stop: WatchStop, moved: () => boolean): Promise<{ result: HttpResult; cancelled: boolean }> {
  const cancel = new AbortController();
  const onStop = (): void => cancel.abort();
  stop.abort.signal.addEventListener('abort', onStop, { once: true });
  const poll = setInterval(() => {
    if (moved()) cancel.abort();
  }, 50);
  try {
    if (stop.done) cancel.abort();
    const result = await httpCall(context.dispatcher, url, 'GET', null, timeoutMs, cancel.signal);
    return { result, cancelled: cancel.signal.aborted };
  } finally {
    clearInterval(poll);
    stop.abort.signal.removeEventListener('abort', onStop);
  }
}

/** The entries of a watch's 200 body; a body that is not the query's answer is a bug, not an outcome. */
function watchEntries(query: string, recurse: boolean, body: string): SeenEntry[] {
  const entries = parseEntries(body);
  if (entries === null || entries.length === 0 || (!recurse && (entries.length !== 1 || entries[0]?.Key !== query))
    || entries.some((entry) => !entry.Key.startsWith(query))) {
    throw new Error(`watch GET ${query}: 200 with an unexpected body ${body.slice(0, 200)}`);
  }
  return entries.map((entry) => ({ key: entry.Key, value: decodeValue(entry.Value), modifyIndex: entry.ModifyIndex }));
}
