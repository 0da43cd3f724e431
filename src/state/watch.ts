/**
 * The watch index behind blocking queries (consul-api.md §3). A waiter names a scope — one KV key,
 * a KV prefix, or catalog/session tables — and the index it already has; it resolves once a change
 * in its scope lands at a higher Raft index, or when its AbortSignal fires (the HTTP layer aborts
 * at the wait timeout and on client disconnect).
 *
 * Why "a change in scope at index i > minIndex" is the whole rule: after any change under prefix P
 * at index i, the index of P (live ModifyIndex, tombstones, or the KV-space fallback) is exactly i,
 * because i is the newest index of all. So a woken waiter never needs to recompute a prefix index.
 *
 * Scale: a change to key K looks up K in the exact-key map and each prefix of K in the prefix map,
 * only at the lengths some waiter watches; it never scans the waiters.
 */
import { OverloadedError } from '../lib/errors.js';
import { assert, assertNever } from '../lib/assert.js';
import { WATCH_WAITERS_MAX } from './limits.js';
import type { ChangeSet, TableName } from './write-context.js';

/** What a blocking query watches. */
export type WatchScope =
  /** `GET /v1/kv/<key>`: wakes only when this key changes (a missing key: when it is created). */
  | { readonly kind: 'kv-key'; readonly key: string }
  /** `GET /v1/kv/<prefix>?recurse|?keys`: wakes on any change to a key starting with the prefix. */
  | { readonly kind: 'kv-prefix'; readonly prefix: string }
  /** Sessions, catalog and health reads: wakes when any of the tables changes. */
  | { readonly kind: 'tables'; readonly tables: readonly TableName[] };

/** Why a wait ended. */
export type WakeReason = 'changed' | 'aborted';

/**
 * The scope of a KV GET: `?keys` wins over `?recurse` (both list the prefix); without either it
 * is the single key. The HTTP layer maps its query flags through this, never by hand.
 */
export function kvReadScope(key: string, options: { readonly recurse: boolean; readonly keys: boolean }): WatchScope {
  return options.recurse || options.keys ? { kind: 'kv-prefix', prefix: key } : { kind: 'kv-key', key };
}

/**
 * The table scopes of the non-KV reads, as Consul 1.16 indexes them: session reads use the
 * sessions table; catalog nodes the nodes table; catalog services the services table; a catalog
 * node and a service's instances the nodes and services tables; health node and state reads the
 * checks table; health of a service's instances all three.
 */
export const TABLE_SCOPES = {
  sessions: { kind: 'tables', tables: ['sessions'] },
  catalogNodes: { kind: 'tables', tables: ['nodes'] },
  catalogServices: { kind: 'tables', tables: ['services'] },
  catalogNode: { kind: 'tables', tables: ['nodes', 'services'] },
  serviceNodes: { kind: 'tables', tables: ['nodes', 'services'] },
  healthChecks: { kind: 'tables', tables: ['checks'] },
  healthService: { kind: 'tables', tables: ['nodes', 'services', 'checks'] },
} as const satisfies Readonly<Record<string, WatchScope>>;

interface Waiter {
  readonly minIndex: number;
  readonly finish: (reason: WakeReason) => void;
}

/** Registered waiters by scope, and their wake-up. */
export class WatchIndex {
  readonly #waitersMax: number;
  readonly #byKey = new Map<string, Set<Waiter>>();
  readonly #byPrefix = new Map<string, Set<Waiter>>();
  /** How many distinct watched prefixes have each length: the lengths worth looking up. */
  readonly #prefixLengths = new Map<number, number>();
  readonly #byTable = new Map<TableName, Set<Waiter>>();
  #count = 0;

  /** `waitersMax` defaults to WATCH_WAITERS_MAX; tests lower it. */
  constructor(waitersMax: number = WATCH_WAITERS_MAX) {
    assert(Number.isSafeInteger(waitersMax) && waitersMax > 0, 'waitersMax must be a positive integer');
    this.#waitersMax = waitersMax;
  }

  /** Waiters currently registered. */
  get waiterCount(): number {
    return this.#count;
  }

  /**
   * Resolves `'changed'` at once if `currentIndex` (the scope's index now) is above `minIndex`,
   * else at the first change in scope at an index above `minIndex`; resolves `'aborted'` when
   * `signal` fires. Rejects with OverloadedError (HTTP 429) past the waiter limit.
   */
  wait(scope: WatchScope, minIndex: number, currentIndex: number, signal?: AbortSignal): Promise<WakeReason> {
    assert(Number.isSafeInteger(minIndex) && minIndex >= 0, 'minIndex must be a non-negative integer');
    if (currentIndex > minIndex) return Promise.resolve('changed');
    if (signal?.aborted === true) return Promise.resolve('aborted');
    if (this.#count >= this.#waitersMax) {
      return Promise.reject(new OverloadedError(`Too many blocking queries (limit ${this.#waitersMax})`));
    }
    return new Promise<WakeReason>((resolve) => {
      const sets = this.#setsFor(scope);
      let finished = false;
      const onAbort = (): void => waiter.finish('aborted');
      const waiter: Waiter = {
        minIndex,
        finish: (reason) => {
          if (finished) return; // a change and an abort in the same turn
          finished = true;
          for (const set of sets) set.delete(waiter);
          this.#count--;
          this.#dropEmpty(scope);
          signal?.removeEventListener('abort', onAbort);
          resolve(reason);
        },
      };
      for (const set of sets) set.add(waiter);
      this.#count++;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Wakes the waiters a command's changes concern. `index` is the command's Raft index. */
  notify(changes: ChangeSet, index: number): void {
    if (this.#count === 0 || changes.isEmpty()) return;
    const due = new Set<Waiter>();
    for (const key of changes.keys) this.#collectForKey(key, index, due);
    for (const table of changes.tables) collectDue(this.#byTable.get(table), index, due);
    for (const waiter of due) waiter.finish('changed');
  }

  /** Wakes every waiter (after a snapshot restore, when every index may have moved). */
  wakeAll(): void {
    const all = new Set<Waiter>();
    for (const map of [this.#byKey, this.#byPrefix, this.#byTable] as const) {
      for (const set of map.values()) for (const waiter of set) all.add(waiter);
    }
    for (const waiter of all) waiter.finish('changed');
  }

  #collectForKey(key: string, index: number, due: Set<Waiter>): void {
    collectDue(this.#byKey.get(key), index, due);
    for (const length of this.#prefixLengths.keys()) {
      if (length <= key.length) collectDue(this.#byPrefix.get(key.slice(0, length)), index, due);
    }
  }

  #setsFor(scope: WatchScope): Set<Waiter>[] {
    switch (scope.kind) {
      case 'kv-key':
        return [getOrCreate(this.#byKey, scope.key)];
      case 'kv-prefix': {
        if (!this.#byPrefix.has(scope.prefix)) {
          const length = scope.prefix.length;
          this.#prefixLengths.set(length, (this.#prefixLengths.get(length) ?? 0) + 1);
        }
        return [getOrCreate(this.#byPrefix, scope.prefix)];
      }
      case 'tables':
        assert(scope.tables.length > 0, 'a table scope needs a table');
        return [...new Set(scope.tables)].map((table) => getOrCreate(this.#byTable, table));
      default:
        return assertNever(scope, 'watch scope');
    }
  }

  #dropEmpty(scope: WatchScope): void {
    switch (scope.kind) {
      case 'kv-key':
        dropIfEmpty(this.#byKey, scope.key);
        return;
      case 'kv-prefix':
        if (dropIfEmpty(this.#byPrefix, scope.prefix)) {
          const length = scope.prefix.length;
          const remaining = (this.#prefixLengths.get(length) ?? 0) - 1;
          assert(remaining >= 0, 'prefix length counts stay non-negative');
          if (remaining === 0) this.#prefixLengths.delete(length);
          else this.#prefixLengths.set(length, remaining);
        }
        return;
      case 'tables':
        for (const table of scope.tables) dropIfEmpty(this.#byTable, table);
        return;
      default:
        assertNever(scope, 'watch scope');
    }
  }
}

function collectDue(waiters: Set<Waiter> | undefined, index: number, due: Set<Waiter>): void {
  if (waiters === undefined) return;
  for (const waiter of waiters) if (index > waiter.minIndex) due.add(waiter);
}

function getOrCreate<K>(map: Map<K, Set<Waiter>>, key: K): Set<Waiter> {
  let set = map.get(key);
  if (set === undefined) {
    set = new Set();
    map.set(key, set);
  }
  return set;
}

/** Deletes the set under `key` if it is empty; returns whether it did. */
function dropIfEmpty<K>(map: Map<K, Set<Waiter>>, key: K): boolean {
  const set = map.get(key);
  if (set === undefined || set.size > 0) return false;
  map.delete(key);
  return true;
}
