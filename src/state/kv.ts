/**
 * The KV store with Consul's semantics (agent/consul/state/kvs.go, v1.16): entries ordered by key
 * bytes, tombstones so prefix indexes move forward after deletes, session ownership of keys, and
 * lock-delays. Writes take a WriteContext (Raft index, leader clock, change set); reads never
 * mutate anything, so servers answering at different times cannot diverge.
 */
import { assert } from '../lib/assert.js';
import { goQuote } from './go-quote.js';
import { LOCK_DELAY_SWEEP_THRESHOLD } from './limits.js';
import { OrderedMap, compareKeys } from './ordered-map.js';
import type { MapCapture } from './ordered-map.js';
import type { WriteContext } from './write-context.js';

/** A KV entry, with Consul's JSON field names. Stored entries are frozen and replaced, never mutated. */
export interface KvEntry {
  readonly Key: string;
  /** null for an empty value (Consul's `"Value":null`). */
  readonly Value: Uint8Array | null;
  /** uint64, exact. */
  readonly Flags: bigint;
  readonly LockIndex: number;
  /** "" when no session holds the key (the JSON omits it then). */
  readonly Session: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** The outcome of an acquire or release. `refused` is Consul's `false`; `error` its error value. */
export type KvLockOutcome =
  | { readonly kind: 'ok'; readonly entry: KvEntry }
  | { readonly kind: 'refused' }
  | { readonly kind: 'error'; readonly message: string };

/** The KV part of a snapshot: entries sorted by key. */
export interface KvSnapshot {
  readonly index: number;
  /** Frozen entries in key order: exportState hands out the stored ones (no copy). */
  readonly entries: readonly KvEntry[];
  readonly tombstones: readonly (readonly [string, number])[];
  readonly lockDelays: readonly (readonly [string, number])[];
  /** The Raft index of the write that set each lock-delay (absent in older snapshots). */
  readonly lockDelayIndexes?: readonly (readonly [string, number])[];
}

/** A KvSnapshot whose entries are read from a capture of the live table, row by row. */
export type KvSnapshotSource = Omit<KvSnapshot, 'entries'> & { readonly entries: MapCapture<KvEntry> };

type UndoRecord =
  | { readonly kind: 'entry'; readonly key: string; readonly previous: KvEntry | undefined }
  | { readonly kind: 'tombstone'; readonly key: string; readonly previous: number | undefined };

interface KvContent {
  readonly Key: string;
  readonly Value: Uint8Array | null;
  readonly Flags: bigint;
  readonly LockIndex: number;
  readonly Session: string;
}

/** The KV table, its tombstones (the graveyard), session ownership and lock-delays. */
export class KvStore {
  #entries = new OrderedMap<KvEntry>();
  /** key → delete index. */
  #tombstones = new OrderedMap<number>();
  readonly #keysBySession = new Map<string, Set<string>>();
  /** key → the leader-clock ms until which `acquire` fails. */
  readonly #lockDelays = new Map<string, number>();
  /** The Raft index at which each lock-delay was set (see lockDelaySetAfter). */
  readonly #lockDelayIndexes = new Map<string, number>();
  /** The KV-space index: the last index that changed an entry or a tombstone. */
  #index = 0;
  #journal: UndoRecord[] | null = null;
  #journalSavedIndex = 0;

  /** The KV-space index (Consul's max of the `kvs` and `tombstones` table indexes). */
  get index(): number {
    return this.#index;
  }

  /** The number of live keys. */
  get size(): number {
    return this.#entries.size;
  }

  /** The number of tombstones waiting to be reaped. */
  get tombstoneCount(): number {
    return this.#tombstones.size;
  }

  /** The entry under `key`. */
  get(key: string): KvEntry | undefined {
    return this.#entries.get(key);
  }

  /** Entries whose key starts with `prefix` as bytes (`foo` matches `foobar`), in key-byte order. */
  list(prefix: string): KvEntry[] {
    const result: KvEntry[] = [];
    for (const [, entry] of this.#entries.entriesWithPrefix(prefix)) result.push(entry);
    return result;
  }

  /**
   * `?keys[&separator=]` (KVS.ListKeys): keys under `prefix`; with a separator each key is cut
   * just after the first separator following the prefix, then de-duplicated.
   */
  listKeys(prefix: string, separator: string): string[] {
    const keys: string[] = [];
    const seen = new Set<string>();
    for (const [key] of this.#entries.entriesWithPrefix(prefix)) {
      const cut = separator === '' ? -1 : key.indexOf(separator, prefix.length);
      if (cut < 0) {
        keys.push(key);
        continue;
      }
      const folded = key.slice(0, cut + separator.length);
      if (!seen.has(folded)) {
        seen.add(folded);
        keys.push(folded);
      }
    }
    return keys;
  }

  /** The blocking index of a single-key GET: its ModifyIndex, else the KV-space index (may be 0). */
  indexForKey(key: string): number {
    return this.#entries.get(key)?.ModifyIndex ?? this.#index;
  }

  /**
   * The blocking index of a recurse/keys listing (KVSList): max(live ModifyIndex under prefix,
   * tombstone index under prefix); if that is 0, or the prefix is "", the KV-space index.
   */
  indexForPrefix(prefix: string): number {
    if (prefix === '') return this.#index;
    let max = 0;
    for (const [, entry] of this.#entries.entriesWithPrefix(prefix)) max = Math.max(max, entry.ModifyIndex);
    for (const [, deletedAt] of this.#tombstones.entriesWithPrefix(prefix)) max = Math.max(max, deletedAt);
    return max === 0 ? this.#index : max;
  }

  /** The keys `session` holds, sorted, so invalidation runs in the same order everywhere. */
  keysHeldBy(session: string): string[] {
    return [...(this.#keysBySession.get(session) ?? [])].sort(compareKeys);
  }

  /** The leader-clock ms until which `key` cannot be acquired, if a lock-delay was recorded. */
  lockDelayUntil(key: string): number | undefined {
    return this.#lockDelays.get(key);
  }

  /**
   * True when a lock-delay on `key` was set by a write after `index`: an acquire whose leader
   * checked lock-delay (on its monotonic clock) at applied index `index` did not see it.
   */
  lockDelaySetAfter(key: string, index: number): boolean {
    return (this.#lockDelayIndexes.get(key) ?? 0) > index;
  }

  /** True when an acquire of `key` at leader time `nowMs` must fail (Consul: `expires.After(now)`). */
  isLockDelayed(key: string, nowMs: number): boolean {
    const until = this.#lockDelays.get(key);
    return until !== undefined && until > nowMs;
  }

  /** Plain PUT: upsert that keeps the current Session (Consul's kvsSetTxn, updateSession=false). */
  set(context: WriteContext, key: string, value: Uint8Array | null, flags: bigint): KvEntry {
    // LockIndex 0: Consul's PUT handler sends a DirEntry without LockIndex, so a plain PUT over a
    // held key keeps its Session but resets LockIndex (and is a no-op only if LockIndex was 0).
    return this.#upsert(context, { Key: key, Value: value, Flags: flags, LockIndex: 0, Session: '' }, false);
  }

  /** `?cas=N`: N = 0 creates only; otherwise writes only if ModifyIndex == N. Null when refused. */
  setCas(context: WriteContext, key: string, value: Uint8Array | null, flags: bigint, casIndex: bigint): KvEntry | null {
    const existing = this.#entries.get(key);
    if (casIndex === 0n && existing !== undefined) return null;
    if (casIndex !== 0n && (existing === undefined || BigInt(existing.ModifyIndex) !== casIndex)) return null;
    return this.set(context, key, value, flags);
  }

  /**
   * `?acquire=<session>` (kvsLockTxn). Lock-delay is checked by the caller first, as Consul's
   * leader does before proposing. A new holder bumps LockIndex (a new key gets 1); the holder
   * re-acquiring keeps it.
   */
  lock(context: WriteContext, key: string, value: Uint8Array | null, flags: bigint, session: string,
    sessionExists: (id: string) => boolean): KvLockOutcome {
    if (session === '') return { kind: 'error', message: 'missing session' };
    if (!sessionExists(session)) return { kind: 'error', message: `invalid session ${goQuote(session)}` };
    const existing = this.#entries.get(key);
    let lockIndex = 1;
    if (existing !== undefined) {
      if (existing.Session !== '' && existing.Session !== session) return { kind: 'refused' };
      lockIndex = existing.Session === session ? existing.LockIndex : existing.LockIndex + 1;
    }
    const entry = this.#upsert(context, { Key: key, Value: value, Flags: flags, LockIndex: lockIndex, Session: session }, true);
    return { kind: 'ok', entry };
  }

  /** `?release=<session>` (kvsUnlockTxn): only the holder may release; LockIndex stays, no lock-delay. */
  unlock(context: WriteContext, key: string, value: Uint8Array | null, flags: bigint, session: string): KvLockOutcome {
    if (session === '') return { kind: 'error', message: 'missing session' };
    const existing = this.#entries.get(key);
    if (existing === undefined || existing.Session !== session) return { kind: 'refused' };
    const entry = this.#upsert(context, { Key: key, Value: value, Flags: flags, LockIndex: existing.LockIndex, Session: '' }, true);
    return { kind: 'ok', entry };
  }

  /** Clears the Session of a held key, keeping Value, Flags and LockIndex (session invalidation). */
  clearSession(context: WriteContext, key: string): void {
    const existing = this.#entries.get(key);
    assert(existing !== undefined, 'a held key exists');
    const { Key, Value, Flags, LockIndex } = existing;
    this.#upsert(context, { Key, Value, Flags, LockIndex, Session: '' }, true);
  }

  /** Plain DELETE: removes the key and leaves a tombstone; an absent key is a no-op. */
  delete(context: WriteContext, key: string): void {
    const existing = this.#entries.get(key);
    if (existing === undefined) return;
    this.#writeTombstone(key, context.index);
    this.#write(context, key, existing, undefined);
  }

  /** `DELETE ?cas=N`: true if ModifyIndex was N (then deleted), **true if absent**, false otherwise. */
  deleteCas(context: WriteContext, key: string, casIndex: bigint): boolean {
    const existing = this.#entries.get(key);
    if (existing === undefined) return true;
    if (BigInt(existing.ModifyIndex) !== casIndex) return false;
    this.delete(context, key);
    return true;
  }

  /**
   * `DELETE ?recurse`: every key starting with `prefix` as bytes ("" = everything). Like Consul,
   * one tombstone at the prefix stands for the subtree (older tombstones under it are subsumed
   * and dropped); a deeper prefix then falls back to the KV-space index, which is this index, so
   * no prefix index moves backwards.
   */
  deleteTree(context: WriteContext, prefix: string): void {
    const doomed = [...this.#entries.entriesWithPrefix(prefix)];
    if (doomed.length === 0) return;
    const buried: string[] = [];
    for (const [key] of this.#tombstones.entriesWithPrefix(prefix)) buried.push(key);
    for (const key of buried) this.#writeTombstone(key, undefined);
    if (prefix !== '') this.#writeTombstone(prefix, context.index);
    for (const [key, entry] of doomed) this.#write(context, key, entry, undefined);
  }

  /** Records a lock-delay; keeps the later deadline if one is already set (P4: never shorten it). */
  setLockDelay(key: string, untilMs: number, nowMs: number, index: number): void {
    assert(this.#journal === null, 'lock-delays are never set inside a transaction');
    assert(Number.isSafeInteger(untilMs), 'lock-delay deadline is an integer');
    const current = this.#lockDelays.get(key);
    this.#lockDelays.set(key, current === undefined ? untilMs : Math.max(current, untilMs));
    this.#lockDelayIndexes.set(key, index);
    if (this.#lockDelays.size > LOCK_DELAY_SWEEP_THRESHOLD) this.#sweepLockDelays(nowMs);
  }

  /** Drops tombstones deleted at or before `reapIndex`; returns how many. */
  reapTombstones(context: WriteContext, reapIndex: number): number {
    const reaped: string[] = [];
    for (const [key, deletedAt] of this.#tombstones.entries()) if (deletedAt <= reapIndex) reaped.push(key);
    for (const key of reaped) this.#writeTombstone(key, undefined);
    // Consul bumps the tombstones table index, hence the KV-space index; nobody is woken.
    if (reaped.length > 0) this.#bumpIndex(context.index);
    return reaped.length;
  }

  /** Starts an all-or-nothing group of writes (a txn): every change is journaled for rollback. */
  beginAtomic(): void {
    assert(this.#journal === null, 'atomic groups do not nest');
    this.#journal = [];
    this.#journalSavedIndex = this.#index;
  }

  /** Keeps the writes since beginAtomic. */
  commitAtomic(): void {
    assert(this.#journal !== null, 'commit without begin');
    this.#journal = null;
  }

  /** Undoes every write since beginAtomic, restoring entries, tombstones, sessions and the index. */
  rollbackAtomic(): void {
    const journal = this.#journal;
    assert(journal !== null, 'rollback without begin');
    this.#journal = null;
    for (let i = journal.length - 1; i >= 0; i--) {
      const record = journal[i] as UndoRecord;
      if (record.kind === 'entry') this.#store(record.key, this.#entries.get(record.key), record.previous);
      else if (record.previous === undefined) this.#tombstones.delete(record.key);
      else this.#tombstones.set(record.key, record.previous);
    }
    this.#index = this.#journalSavedIndex;
  }

  /** The whole store in key order (snapshot): the stored entries themselves, which are frozen. */
  exportState(): KvSnapshot {
    return { ...this.#exportAllButEntries(), entries: this.#entries.valuesInKeyOrder() };
  }

  /**
   * exportState for a snapshot serialized in steps: the entries are a capture of the table
   * (OrderedMap.capture) read row by row later, the small tables are copied now. Release the
   * capture when done with it.
   */
  captureState(): KvSnapshotSource {
    return { ...this.#exportAllButEntries(), entries: this.#entries.capture() };
  }

  #exportAllButEntries(): Omit<KvSnapshot, 'entries'> {
    const lockDelays = [...this.#lockDelays.entries()].sort((a, b) => compareKeys(a[0], b[0]));
    const lockDelayIndexes = [...this.#lockDelayIndexes.entries()].sort((a, b) => compareKeys(a[0], b[0]));
    return { index: this.#index, tombstones: [...this.#tombstones.entries()], lockDelays, lockDelayIndexes };
  }

  /**
   * Rebuilds a store from validated snapshot entries (frozen, sorted by key, as decodeSnapshot
   * gives them). The ordered maps are bulk-loaded from the sorted rows, not inserted key by key.
   */
  static fromState(state: KvSnapshot): KvStore {
    const store = new KvStore();
    const keys: string[] = [];
    for (const entry of state.entries) {
      assert(Object.isFrozen(entry), 'stored entries are frozen');
      keys.push(entry.Key);
      if (entry.Session !== '') store.#holdKey(entry.Session, entry.Key);
    }
    store.#entries = OrderedMap.fromSorted(keys, state.entries);
    store.#tombstones = OrderedMap.fromSorted(state.tombstones.map((pair) => pair[0]), state.tombstones.map((pair) => pair[1]));
    for (const [key, until] of state.lockDelays) store.#lockDelays.set(key, until);
    for (const [key, index] of state.lockDelayIndexes ?? []) store.#lockDelayIndexes.set(key, index);
    store.#index = state.index;
    return store;
  }

  /** kvsSetTxn: CreateIndex kept, Session kept unless `updateSession`, no-op if nothing changed. */
  #upsert(context: WriteContext, content: KvContent, updateSession: boolean): KvEntry {
    const existing = this.#entries.get(content.Key);
    const session = updateSession ? content.Session : (existing?.Session ?? '');
    const candidate: KvContent = { ...content, Session: session };
    if (existing !== undefined && sameContent(existing, candidate)) return existing;
    // Every field written out, in one order, never `{ ...candidate }`: once optimized, V8's object
    // spread gives each clone a hidden class of its own (Map, DescriptorArray and PropertyArray:
    // ~290 bytes more per entry), which at 1M keys was ~350 MiB of RSS per server and slow GCs.
    const entry: KvEntry = Object.freeze({
      Key: candidate.Key,
      Value: candidate.Value,
      Flags: candidate.Flags,
      LockIndex: candidate.LockIndex,
      Session: candidate.Session,
      CreateIndex: existing?.CreateIndex ?? context.index,
      ModifyIndex: context.index,
    });
    this.#write(context, content.Key, existing, entry);
    return entry;
  }

  /** Replaces `previous` (the current entry under `key`) with `next`, journaled and noted. */
  #write(context: WriteContext, key: string, previous: KvEntry | undefined, next: KvEntry | undefined): void {
    this.#journal?.push({ kind: 'entry', key, previous });
    this.#store(key, previous, next);
    context.changes.keys.push(key);
    this.#bumpIndex(context.index);
  }

  /** Replaces the entry under `key` and keeps the session → keys index in step. */
  #store(key: string, previous: KvEntry | undefined, next: KvEntry | undefined): void {
    if (previous !== undefined && previous.Session !== '') {
      const held = this.#keysBySession.get(previous.Session);
      held?.delete(key);
      if (held?.size === 0) this.#keysBySession.delete(previous.Session);
    }
    if (next === undefined) {
      this.#entries.delete(key);
      return;
    }
    assert(next.Key === key, 'an entry is stored under its own key');
    this.#entries.set(key, next);
    if (next.Session !== '') this.#holdKey(next.Session, key);
  }

  /** Notes that `session` holds `key`. */
  #holdKey(session: string, key: string): void {
    let held = this.#keysBySession.get(session);
    if (held === undefined) this.#keysBySession.set(session, (held = new Set()));
    held.add(key);
  }

  #writeTombstone(key: string, deletedAt: number | undefined): void {
    this.#journal?.push({ kind: 'tombstone', key, previous: this.#tombstones.get(key) });
    if (deletedAt === undefined) this.#tombstones.delete(key);
    else this.#tombstones.set(key, deletedAt);
  }

  #bumpIndex(index: number): void {
    assert(index >= this.#index, 'the KV index never moves backwards');
    this.#index = index;
  }

  #sweepLockDelays(nowMs: number): void {
    for (const [key, until] of [...this.#lockDelays]) {
      if (until > nowMs) continue;
      this.#lockDelays.delete(key);
      this.#lockDelayIndexes.delete(key);
    }
  }
}

/** Consul's DirEntry.Equal: LockIndex, Key, Flags, Value bytes (nil == empty) and Session. */
function sameContent(a: KvContent, b: KvContent): boolean {
  return a.Key === b.Key && a.Flags === b.Flags && a.LockIndex === b.LockIndex
    && a.Session === b.Session && bytesEqual(a.Value, b.Value);
}

/** Byte equality where null equals empty (Go's bytes.Equal(nil, []byte{})). */
export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  const left = a ?? EMPTY_BYTES;
  const right = b ?? EMPTY_BYTES;
  if (left.byteLength !== right.byteLength) return false;
  for (let i = 0; i < left.byteLength; i++) if (left[i] !== right[i]) return false;
  return true;
}

const EMPTY_BYTES = new Uint8Array(0);

