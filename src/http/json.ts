/**
 * JSON output as Consul writes it: compact, or with `?pretty` Go's `MarshalIndent(v, "", "    ")`
 * plus a newline; uint64 fields (bigint) printed with every digit (a rounded lock flag makes Go's
 * api report ErrLockConflict); byte values as padded standard base64 (Go's []byte).
 *
 * The hot path — a KV GET of one key — does not go through the generic serializer: an entry's
 * JSON is built by a template and cached per stored entry (entries are frozen and replaced on
 * every write, so the cache can never be stale).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { KvEntry } from '../state/kv.js';
import type { GoQuery } from './go-query.js';

/** `Content-Type` of every JSON response (node-consul decodes only this type). */
export const JSON_CONTENT_TYPE = 'application/json';

/** Padded standard base64 of `bytes` (no copy: a Buffer view over the same memory). */
export function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Serializes plain data: bigint as digits, Uint8Array as base64, undefined members omitted. */
export function toJson(value: unknown, pretty: boolean): string {
  return pretty ? `${write(value, '\n')}\n` : write(value, null);
}

/** `newline` is null for compact output, else "\n" plus the current indentation. */
function write(value: unknown, newline: string | null): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'bigint':
      return value.toString();
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      if (value instanceof Uint8Array) return `"${base64Of(value)}"`;
      if (Array.isArray(value)) return writeArray(value, newline);
      return writeObject(value as Record<string, unknown>, newline);
    default:
      return 'null';
  }
}

function writeArray(items: readonly unknown[], newline: string | null): string {
  if (items.length === 0) return '[]';
  if (newline === null) return `[${items.map((item) => write(item, null)).join(',')}]`;
  const inner = `${newline}    `;
  return `[${inner}${items.map((item) => write(item, inner)).join(`,${inner}`)}${newline}]`;
}

function writeObject(object: Record<string, unknown>, newline: string | null): string {
  const members: string[] = [];
  const inner = newline === null ? null : `${newline}    `;
  for (const key of Object.keys(object)) {
    const member = object[key];
    if (member === undefined) continue;
    members.push(`${JSON.stringify(key)}:${inner === null ? '' : ' '}${write(member, inner)}`);
  }
  if (members.length === 0) return '{}';
  if (inner === null) return `{${members.join(',')}}`;
  return `{${inner}${members.join(`,${inner}`)}${newline}}`;
}

/** A KV entry in Consul's JSON shape (§4): `Session` omitted when empty, Value base64 or null. */
export interface KvEntryJson {
  readonly LockIndex: number;
  readonly Key: string;
  readonly Flags: bigint;
  readonly Value: string | null;
  readonly Session?: string;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** The JSON shape of an entry (for the generic serializer: txn results, `?pretty`). */
export function kvEntryJson(entry: KvEntry): KvEntryJson {
  const { LockIndex, Key, Flags, Session, CreateIndex, ModifyIndex } = entry;
  const Value = entry.Value === null ? null : base64Of(entry.Value);
  return Session === ''
    ? { LockIndex, Key, Flags, Value, CreateIndex, ModifyIndex }
    : { LockIndex, Key, Flags, Value, Session, CreateIndex, ModifyIndex };
}

/**
 * Values up to this size have their entry JSON cached: the hot keys of a benchmark or of Swarm
 * are small, and caching big values would double their memory for little gain.
 */
const CACHED_VALUE_BYTES_MAX = 16 * 1024;
const entryJsonCache = new WeakMap<KvEntry, string>();

/** The compact JSON of one entry, identical to `toJson(kvEntryJson(entry), false)`. */
export function compactKvEntry(entry: KvEntry): string {
  const cached = entryJsonCache.get(entry);
  if (cached !== undefined) return cached;
  const value = entry.Value === null ? 'null' : `"${base64Of(entry.Value)}"`;
  const session = entry.Session === '' ? '' : `,"Session":${JSON.stringify(entry.Session)}`;
  const json = `{"LockIndex":${entry.LockIndex},"Key":${JSON.stringify(entry.Key)},"Flags":${entry.Flags},`
    + `"Value":${value}${session},"CreateIndex":${entry.CreateIndex},"ModifyIndex":${entry.ModifyIndex}}`;
  if (entry.Value === null || entry.Value.byteLength <= CACHED_VALUE_BYTES_MAX) entryJsonCache.set(entry, json);
  return json;
}

/**
 * Recent list bodies, by their first entry. Every blocking query on a prefix that one write wakes
 * reads the same entries (the same objects: entries are immutable, replaced on change), so the
 * body is built once per change, not once per watcher (Swarm's watchers re-read their whole
 * prefix on every wake). Bounded in count and in body size.
 */
const LIST_CACHE_SIZE_MAX = 32;
const LIST_CACHE_ENTRIES_MIN = 16;
const LIST_CACHE_BODY_CHARS_MAX = 1024 * 1024;
const listCache = new Map<KvEntry, { readonly entries: readonly KvEntry[]; readonly body: string }>();

function sameEntries(a: readonly KvEntry[], b: readonly KvEntry[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}

/** The compact JSON array of entries (a KV GET's body). */
export function compactKvEntries(entries: readonly KvEntry[]): string {
  if (entries.length === 1) return `[${compactKvEntry(entries[0] as KvEntry)}]`;
  if (entries.length < LIST_CACHE_ENTRIES_MIN) return `[${entries.map(compactKvEntry).join(',')}]`;
  const head = entries[0] as KvEntry;
  const cached = listCache.get(head);
  if (cached !== undefined && sameEntries(cached.entries, entries)) return cached.body;
  const body = `[${entries.map(compactKvEntry).join(',')}]`;
  if (body.length <= LIST_CACHE_BODY_CHARS_MAX) {
    listCache.delete(head);
    if (listCache.size >= LIST_CACHE_SIZE_MAX) listCache.delete(listCache.keys().next().value as KvEntry);
    listCache.set(head, { entries: [...entries], body });
  }
  return body;
}

/** True with `?pretty` (presence-based, like Consul). */
export function isPretty(request: FastifyRequest): boolean {
  return (request.query as GoQuery).has('pretty');
}

/** Strings are sent as they are: our JSON is serialized already. */
const ALREADY_SERIALIZED = (payload: unknown): string => payload as string;

/**
 * Sends JSON text with `Content-Type: application/json` exactly. Through Fastify's plain path a
 * string with a JSON type gets `; charset=utf-8` appended; a reply serializer skips that step.
 */
export function sendJsonText(reply: FastifyReply, body: string): FastifyReply {
  return reply.serializer(ALREADY_SERIALIZED).header('content-type', JSON_CONTENT_TYPE).send(body);
}

/**
 * Sends `value` as JSON (200 unless the reply's status was set). `compact`, when given, is the
 * already-serialized compact form, used unless `?pretty` asks for the indented one.
 */
export function sendJson(request: FastifyRequest, reply: FastifyReply, value: () => unknown, compact?: string): FastifyReply {
  const body = isPretty(request) ? toJson(value(), true) : (compact ?? toJson(value(), false));
  return sendJsonText(reply, body);
}
