/**
 * Writing keys from the UI without ever overwriting someone else's change.
 * - Create uses `?cas=0` (create only): a key that appeared meanwhile is reported, not replaced.
 * - Edit uses `?cas=<ModifyIndex the editor started from>`: Consul answers `false` when the key
 *   changed or vanished since (consul-api.md §4); the UI then reads the key again and tells the
 *   person what happened, keeping their draft. Overwriting is a second, explicit choice.
 * - Delete of a key uses `DELETE ?cas=<ModifyIndex>` the same way; a folder is deleted with
 *   `?recurse` on its prefix, which ends with `/` so `a/` never takes `ab` along.
 * - Flags are always sent: a PUT without `flags` sets them to 0, which would silently break the
 *   consul/api lock flag every libkv (Swarm) key carries.
 */
import type { ApiClient } from './api-client.js';
import { indexOf, u64Text } from './consul-json.js';
import { encodeKeyPath } from './kv-tree.js';

/** One KV entry as the UI uses it (consul-api.md §4 Entry JSON). */
export interface KvEntry {
  readonly key: string;
  /** Padded standard base64, or null for an empty value. */
  readonly value: string | null;
  /** uint64 as exact decimal digits. */
  readonly flags: string;
  /** The session holding the lock, or null. */
  readonly session: string | null;
  readonly lockIndex: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** Largest uint64: Flags and indexes are Go uint64s. */
export const U64_MAX = 18446744073709551615n;

/** Flags that tools put on keys, by value: shown next to the number. */
export const KNOWN_FLAGS: Readonly<Record<string, string>> = {
  '3304740253564472344': 'consul/api Lock (Swarm, libkv, consul lock)',
  '16210313421097356768': 'consul/api Semaphore',
};

/** Reads one entry of a KV answer; throws on a shape Consul never sends. */
export function kvEntryOf(json: unknown): KvEntry {
  if (typeof json !== 'object' || json === null) throw new TypeError('a KV entry is an object');
  const entry = json as Record<string, unknown>;
  if (typeof entry.Key !== 'string') throw new TypeError('a KV entry has a Key');
  if (entry.Value !== null && entry.Value !== undefined && typeof entry.Value !== 'string') throw new TypeError('Value is base64 or null');
  return {
    key: entry.Key,
    value: typeof entry.Value === 'string' ? entry.Value : null,
    flags: u64Text(entry.Flags),
    session: typeof entry.Session === 'string' && entry.Session !== '' ? entry.Session : null,
    lockIndex: indexOf(entry.LockIndex),
    createIndex: indexOf(entry.CreateIndex),
    modifyIndex: indexOf(entry.ModifyIndex),
  };
}

/** The flags field a person typed, as uint64 digits ("" means 0), or why it is not one. */
export function parseFlags(text: string): { ok: true; flags: string } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, flags: '0' };
  if (!/^\d{1,20}$/.test(trimmed) || BigInt(trimmed) > U64_MAX) {
    return { ok: false, error: 'Flags must be a whole number from 0 to 18446744073709551615.' };
  }
  return { ok: true, flags: BigInt(trimmed).toString() };
}

/** Flags in hexadecimal (`0x2ddccbc058a50c18`), as tools document them. */
export function flagsHex(flags: string): string {
  return `0x${BigInt(flags).toString(16)}`;
}

/** What the UI needs from the KV endpoints (ApiClient in the page, a fake in tests). */
export interface KvStore {
  /** `PUT /v1/kv/<key>?<query>` with `bytes`; Consul's true/false. */
  put(key: string, bytes: Uint8Array, query: string): Promise<boolean>;
  /** `DELETE /v1/kv/<key>?<query>`; Consul's true/false. */
  delete(key: string, query: string): Promise<boolean>;
  /** `GET /v1/kv/<key>` now (not blocking); null when missing. */
  read(key: string): Promise<KvEntry | null>;
}

/** The KV endpoints over an ApiClient. */
export function kvStoreOver(client: ApiClient): KvStore {
  const path = (key: string, query: string): string => `/v1/kv/${encodeKeyPath(key)}${query === '' ? '' : `?${query}`}`;
  return {
    async put(key, bytes, query) {
      const answer = await client.call(path(key, query), { method: 'PUT', body: bytes });
      return answer.text.trim() === 'true';
    },
    async delete(key, query) {
      const answer = await client.call(path(key, query), { method: 'DELETE' });
      return answer.text.trim() === 'true';
    },
    async read(key) {
      const answer = await client.getJson(path(key, ''), { accept: [200, 404] });
      if (answer.status === 404 || !Array.isArray(answer.body) || answer.body.length === 0) return null;
      return kvEntryOf(answer.body[0]);
    },
  };
}

/** How a write ended. */
export type WriteOutcome =
  | { readonly kind: 'done' }
  | {
    readonly kind: 'conflict';
    /** `exists`: a create met a key; `changed`/`deleted`: an edit or delete met a newer state. */
    readonly reason: 'exists' | 'changed' | 'deleted';
    /** The key as it is now (null when it is gone). */
    readonly current: KvEntry | null;
  };

/** Creates `key` only if it does not exist (`?cas=0`). */
export async function createKey(store: KvStore, key: string, bytes: Uint8Array, flags: string): Promise<WriteOutcome> {
  if (await store.put(key, bytes, `cas=0&flags=${flags}`)) return { kind: 'done' };
  return { kind: 'conflict', reason: 'exists', current: await store.read(key) };
}

/**
 * Saves an edit of `key` made from the version at `baseIndex` (its ModifyIndex then). With
 * `baseIndex` 0 the key is (re)created only if absent: how "save my edit" works on a key that
 * someone deleted.
 */
export async function saveKey(store: KvStore, key: string, bytes: Uint8Array, flags: string, baseIndex: number): Promise<WriteOutcome> {
  if (await store.put(key, bytes, `cas=${baseIndex}&flags=${flags}`)) return { kind: 'done' };
  const current = await store.read(key);
  if (current === null) return { kind: 'conflict', reason: 'deleted', current };
  return { kind: 'conflict', reason: baseIndex === 0 ? 'exists' : 'changed', current };
}

/** Deletes `key` if it is still the version at `baseIndex` (a key already gone counts as done). */
export async function deleteKey(store: KvStore, key: string, baseIndex: number): Promise<WriteOutcome> {
  if (await store.delete(key, `cas=${baseIndex}`)) return { kind: 'done' };
  return { kind: 'conflict', reason: 'changed', current: await store.read(key) };
}

/** Deletes folder `prefix` and everything under it. */
export async function deleteFolder(store: KvStore, prefix: string): Promise<void> {
  if (!prefix.endsWith('/')) throw new RangeError('a folder prefix ends with /: deleting "a" recursively would take "ab" too');
  await store.delete(prefix, 'recurse');
}

/** What to tell a person about a conflict: one sentence, then what their choices are. */
export function conflictMessage(outcome: Extract<WriteOutcome, { kind: 'conflict' }>, action: 'create' | 'save' | 'delete', baseIndex: number): string {
  const now = outcome.current === null ? '' : ` (now at index ${outcome.current.modifyIndex})`;
  switch (outcome.reason) {
    case 'exists':
      return `Not created: a key with this name already exists${now}. Nothing was overwritten.`;
    case 'deleted':
      return action === 'delete'
        ? 'The key was already deleted by someone else.'
        : 'Not saved: someone deleted this key while you were editing. Your text is kept below.';
    case 'changed':
      return action === 'delete'
        ? `Not deleted: someone changed this key since you loaded it (index ${baseIndex} → ${outcome.current?.modifyIndex ?? '?'}). Review the new value first.`
        : `Not saved: someone changed this key while you were editing (index ${baseIndex} → ${outcome.current?.modifyIndex ?? '?'}). Your text is kept below; nothing was overwritten.`;
  }
}
