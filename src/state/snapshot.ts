/**
 * The snapshot format of the whole state: one version byte, then msgpack of sorted rows (KV
 * entries, tombstones, lock-delays, sessions, nodes, services, checks) and every table index.
 * Version 2 added the services table; a version 1 snapshot (written before services existed)
 * still restores, with no services and a services index of 0. Rows are
 * sorted and records are sorted pairs, so two servers in the same logical state produce the same
 * bytes (the determinism tests compare them). Everything is re-validated on decode.
 */
import { assert } from '../lib/assert.js';
import { CorruptionError } from '../lib/errors.js';
import type { CatalogNode, CatalogService, CatalogSnapshot, HealthCheck } from './catalog.js';
import { HEALTH_STATUSES, SESSION_BEHAVIORS } from './commands.js';
import type { KvEntry, KvSnapshot } from './kv.js';
import { RESTORE_VALUE_SLAB_BYTES } from './limits.js';
import { MsgpackReader } from './msgpack-reader.js';
import { MsgpackWriter, UINT64_BYTES, arrayHeaderBytes, bytesOrNullBytes, countBytes, stringBytes } from './msgpack-writer.js';
import { compareKeys } from './ordered-map.js';
import type { MapCapture } from './ordered-map.js';
import type { SessionSnapshot, StoredSession } from './sessions.js';
import {
  ByteSlab, copyBytes, expectArray, expectBoolean, expectBytesOrNull, expectCount, expectObject, expectOneOf, expectString,
  expectStringArray, statePackr, stateUnpackr,
} from './wire.js';
import type { WireObject } from './wire.js';

/** Bumped on any change of the layout below; restore refuses versions it does not know. */
export const SNAPSHOT_FORMAT_VERSION = 2;

/** The layout before the services table: restored as a catalog without services. */
const SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES = 1;

/** The whole state of the machine. */
export interface StateSnapshot {
  /** A snapshot restore in progress (its chunks so far), or null. Absent in older snapshots. */
  readonly restore: { readonly restoreId: string; readonly totalBytes: number; readonly sha256: string; readonly data: Uint8Array } | null;
  readonly lastAppliedIndex: number;
  readonly kv: KvSnapshot;
  readonly sessions: SessionSnapshot;
  readonly catalog: CatalogSnapshot;
}

/**
 * Encodes a snapshot: version byte + msgpack. The bytes are exactly msgpackr's encoding of the
 * whole object (snapshot.test.ts checks it), assembled from pieces in one buffer of the final
 * size: the small tables packed by msgpackr, the KV rows written by MsgpackWriter. One msgpackr
 * pack of a 1M-key state built an array per row, grew msgpackr's module-wide buffer to ~160 MB
 * (which it keeps for ever) and copied the result again.
 */
export function encodeSnapshot(state: StateToEncode): Uint8Array {
  const steps = encodeSnapshotInSteps(state, Number.POSITIVE_INFINITY);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/** A state to encode: its KV entries may be a capture of the live table, read row by row. */
export type StateToEncode = Omit<StateSnapshot, 'kv'> & {
  readonly kv: Omit<KvSnapshot, 'entries'> & { readonly entries: readonly KvEntry[] | MapCapture<KvEntry> };
};

/**
 * encodeSnapshot in steps: everything but the KV rows is encoded before this returns; each
 * next() of the generator then sizes or writes at most `rowsPerStep` rows, and the last returns
 * the bytes. The rows are frozen entries (a write replaces an entry, never changes one) read
 * from an array or a capture of the table (OrderedMap.capture), so the state may move on
 * between steps: the bytes are those of `state` as it was passed. At 1M keys the rows are ~1 s
 * of work, which a Raft server must not do in one event-loop turn (its heartbeats would stop
 * for longer than an election timeout). A capture is released once its rows are read, or when
 * the generator is abandoned (return()).
 */
export function encodeSnapshotInSteps(state: StateToEncode, rowsPerStep: number): Generator<void, Uint8Array, void> {
  assert(rowsPerStep >= 1, 'a step encodes at least one row');
  const pieces = new PieceWriter();
  pieces.bytes(Uint8Array.of(SNAPSHOT_FORMAT_VERSION));
  const fields: [string, unknown][] = [];
  if (state.restore !== null) fields.push(['restore', state.restore]);
  fields.push(['lastAppliedIndex', state.lastAppliedIndex], ['kv', state.kv], ['sessions', {
    index: state.sessions.index, sessions: state.sessions.sessions.map(sessionRow),
  }], ['catalog', {
    nodesIndex: state.catalog.nodesIndex,
    servicesIndex: state.catalog.servicesIndex,
    checksIndex: state.catalog.checksIndex,
    nodes: state.catalog.nodes.map(nodeRow),
    services: state.catalog.services.map(serviceRow),
    checks: state.catalog.checks.map(checkRow),
  }]);
  pieces.bytes(mapHeader(fields.length));
  for (const [name, value] of fields) {
    pieces.value(name);
    if (name === 'kv') encodeKv(pieces, state.kv);
    else pieces.value(value);
  }
  return pieces.concat(rowsPerStep);
}

function encodeKv(pieces: PieceWriter, kv: StateToEncode['kv']): void {
  const fields: [string, unknown][] = [['index', kv.index], ['entries', kv.entries], ['tombstones', kv.tombstones],
    ['lockDelays', kv.lockDelays], ['lockDelayIndexes', kv.lockDelayIndexes ?? []]];
  pieces.bytes(mapHeader(fields.length));
  for (const [name, value] of fields) {
    pieces.value(name);
    if (name === 'entries') pieces.rows(kvRows(kv.entries));
    else pieces.value(value);
  }
}

/**
 * The KV entries as rows [Key, Value, Flags, LockIndex, Session, CreateIndex, ModifyIndex]. A
 * capture's rows are read into an array while sizing (then released); writing reads the array.
 */
function kvRows(source: readonly KvEntry[] | MapCapture<KvEntry>): RowsPiece {
  const capture = Array.isArray(source) ? null : source as MapCapture<KvEntry>;
  const count = capture === null ? (source as readonly KvEntry[]).length : capture.keys.length;
  const entries: KvEntry[] = capture === null ? source as KvEntry[] : new Array<KvEntry>(count);
  return {
    count,
    byteCount(from, to) {
      let byteCount = from === 0 ? arrayHeaderBytes(count) : 0;
      for (let i = from; i < to; i++) {
        const e = capture === null ? entries[i] as KvEntry : (entries[i] = capture.valueAt(i));
        byteCount += 1 + stringBytes(e.Key) + bytesOrNullBytes(e.Value) + UINT64_BYTES + countBytes(e.LockIndex)
          + stringBytes(e.Session) + countBytes(e.CreateIndex) + countBytes(e.ModifyIndex);
      }
      if (to === count) capture?.release();
      return byteCount;
    },
    release() {
      capture?.release();
    },
    write(writer, from, to) {
      if (from === 0) writer.arrayHeader(count);
      for (let i = from; i < to; i++) {
        const e = entries[i] as KvEntry;
        writer.arrayHeader(7);
        writer.string(e.Key);
        writer.bytesOrNull(e.Value);
        writer.uint64(e.Flags);
        writer.count(e.LockIndex);
        writer.string(e.Session);
        writer.count(e.CreateIndex);
        writer.count(e.ModifyIndex);
      }
    },
  };
}

/**
 * A msgpack array of `count` rows, sized and written in ranges [from, to): the range starting
 * at 0 includes the array header.
 */
interface RowsPiece {
  readonly count: number;
  byteCount(from: number, to: number): number;
  write(writer: MsgpackWriter, from: number, to: number): void;
  /** Lets go of what the rows are read from, when the encoding is abandoned. */
  release(): void;
}

/** The pieces of a snapshot in order, joined at the end into one buffer of their total size. */
class PieceWriter {
  readonly #pieces: (Uint8Array | RowsPiece)[] = [];

  /** Appends msgpackr's encoding of `value` (a copy: msgpackr returns a view into its reused buffer). */
  value(value: unknown): void {
    this.bytes(copyBytes(statePackr.pack(value)));
  }

  /** Appends `bytes`, which must not change until concat() is done. */
  bytes(bytes: Uint8Array): void {
    this.#pieces.push(bytes);
  }

  /** Appends rows that concat() sizes, then writes in place. */
  rows(piece: RowsPiece): void {
    this.#pieces.push(piece);
  }

  /** Every piece, in order, in one buffer: rows sized, then written, `rowsPerStep` per step. */
  *concat(rowsPerStep: number): Generator<void, Uint8Array, void> {
    try {
      return yield* this.#concat(rowsPerStep);
    } finally {
      for (const piece of this.#pieces) if (!(piece instanceof Uint8Array)) piece.release();
    }
  }

  *#concat(rowsPerStep: number): Generator<void, Uint8Array, void> {
    const sizes: number[] = [];
    for (const piece of this.#pieces) {
      if (piece instanceof Uint8Array) {
        sizes.push(piece.byteLength);
        continue;
      }
      let size = 0;
      for (let from = 0; from === 0 || from < piece.count; from += rowsPerStep) {
        size += piece.byteCount(from, Math.min(piece.count, from + rowsPerStep));
        if (from + rowsPerStep < piece.count) yield;
      }
      sizes.push(size);
    }
    const joined = new Uint8Array(sizes.reduce((sum, size) => sum + size, 0));
    let offset = 0;
    for (const [k, piece] of this.#pieces.entries()) {
      const size = sizes[k] as number;
      if (piece instanceof Uint8Array) {
        joined.set(piece, offset);
      } else {
        const writer = new MsgpackWriter(joined.subarray(offset, offset + size));
        for (let from = 0; from === 0 || from < piece.count; from += rowsPerStep) {
          yield;
          piece.write(writer, from, Math.min(piece.count, from + rowsPerStep));
        }
        writer.assertFull();
      }
      offset += size;
    }
    assert(offset === joined.byteLength, 'the pieces fill the snapshot exactly');
    return joined;
  }
}

/** A msgpack map header, the smallest form, as msgpackr writes it (variableMapSize). */
function mapHeader(count: number): Uint8Array {
  assert(Number.isSafeInteger(count) && count >= 0 && count <= 0xffffffff, 'a msgpack map has at most 2^32-1 entries');
  if (count < 16) return Uint8Array.of(0x80 | count);
  if (count < 0x10000) return Uint8Array.of(0xde, count >> 8, count & 0xff);
  return Uint8Array.of(0xdf, count >>> 24, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff);
}

/** Decodes and validates a snapshot; asserts on malformed content, CorruptionError on a foreign version. */
export function decodeSnapshot(bytes: Uint8Array): StateSnapshot {
  const version = bytes[0];
  if (version !== SNAPSHOT_FORMAT_VERSION && version !== SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES) {
    throw new CorruptionError(`state snapshot version ${String(version)} is not ${SNAPSHOT_FORMAT_VERSION_WITHOUT_SERVICES} or ${SNAPSHOT_FORMAT_VERSION}`);
  }
  // The KV table is read field by field (decodeKv); the rest, small, by msgpackr, whose byte
  // strings are views into `bytes` that decodeRestore copies out.
  const reader = new MsgpackReader(bytes.subarray(1));
  const raw = readMap(reader, 'snapshot', new Map([['kv', decodeKv]]));
  assert(reader.isAtEnd, 'snapshot: bytes after its end');
  const lastAppliedIndex = expectCount(raw['lastAppliedIndex'], 'lastAppliedIndex');
  assert(raw['kv'] !== undefined, 'snapshot: kv expected');
  const kv = raw['kv'] as KvSnapshot; // decodeKv's result
  const sessions = decodeSessions(raw['sessions']);
  const catalog = decodeCatalog(raw['catalog'], version === SNAPSHOT_FORMAT_VERSION);
  for (const index of [kv.index, sessions.index, catalog.nodesIndex, catalog.servicesIndex, catalog.checksIndex]) {
    assert(index <= lastAppliedIndex, 'no table index is beyond the last applied index');
  }
  return { restore: decodeRestore(raw['restore']), lastAppliedIndex, kv, sessions, catalog };
}

/**
 * A map with string keys, as an object: the value of a key in `readers` is read by its reader,
 * every other value decoded by msgpackr (stateUnpackr). Own properties, so `__proto__` is a key.
 */
function readMap(reader: MsgpackReader, what: string, readers: ReadonlyMap<string, (reader: MsgpackReader) => unknown>): WireObject {
  const count = reader.mapHeader(what);
  assert(count <= reader.remainingBytes, `${what}: more fields than bytes`);
  const fields: [string, unknown][] = [];
  for (let i = 0; i < count; i++) {
    const name = reader.string(`${what} field name`);
    const read = readers.get(name);
    fields.push([name, read === undefined ? reader.value(stateUnpackr, `${what}.${name}`) : read(reader)]);
  }
  return Object.fromEntries(fields) as WireObject;
}

function decodeRestore(value: unknown): StateSnapshot['restore'] {
  if (value === undefined) return null;
  const raw = expectObject(value, 'restore');
  const data = expectBytesOrNull(raw['data'], 'restore data') ?? new Uint8Array(0);
  const totalBytes = expectCount(raw['totalBytes'], 'restore totalBytes');
  assert(data.byteLength <= totalBytes, 'restore staging within its total');
  return { restoreId: expectString(raw['restoreId'], 'restoreId'), totalBytes, sha256: expectString(raw['sha256'], 'restore sha256'), data };
}

function decodeKv(reader: MsgpackReader): KvSnapshot {
  const raw = readMap(reader, 'kv', new Map([['entries', readKvRows]]));
  const index = expectCount(raw['index'], 'kv index');
  assert(Array.isArray(raw['entries']), 'kv entries: array expected');
  const entries = raw['entries'] as KvEntry[]; // readKvRows's result
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as KvEntry;
    assert(entry.ModifyIndex <= index, 'an entry is not newer than the KV index');
    assert(i === 0 || compareKeys((entries[i - 1] as KvEntry).Key, entry.Key) < 0, 'kv entries are sorted and unique');
  }
  const tombstones = decodePairs(raw['tombstones'], 'tombstones');
  const lockDelays = decodePairs(raw['lockDelays'], 'lockDelays');
  // Absent in snapshots written before acquires carried the index their leader checked at.
  const lockDelayIndexes = raw['lockDelayIndexes'] === undefined ? [] : decodePairs(raw['lockDelayIndexes'], 'lockDelayIndexes');
  return { index, entries, tombstones, lockDelays, lockDelayIndexes };
}

/** The KV rows, [Key, Value, Flags, LockIndex, Session, CreateIndex, ModifyIndex], as frozen entries. */
function readKvRows(reader: MsgpackReader): KvEntry[] {
  const count = reader.arrayHeader('kv entries');
  assert(count <= reader.remainingBytes, 'kv entries: more rows than bytes');
  const slab = new ByteSlab(RESTORE_VALUE_SLAB_BYTES);
  const entries: KvEntry[] = [];
  for (let i = 0; i < count; i++) {
    assert(reader.arrayHeader('kv row') === 7, 'kv row has 7 fields');
    const key = reader.string('Key');
    const value = reader.bytesViewOrNull('Value');
    // The fields in #upsert's order (kv.ts), so restored and written entries share a hidden class.
    entries.push(Object.freeze({
      Key: key,
      Value: value === null ? null : slab.copy(value),
      Flags: reader.uint64('Flags'),
      LockIndex: reader.count('LockIndex'),
      Session: reader.string('Session'),
      CreateIndex: reader.count('CreateIndex'),
      ModifyIndex: reader.count('ModifyIndex'),
    }));
  }
  return entries;
}

function decodePairs(value: unknown, what: string): [string, number][] {
  const pairs = expectArray(value, what).map((item): [string, number] => {
    const pair = expectArray(item, what);
    assert(pair.length === 2, `${what} row has 2 fields`);
    return [expectString(pair[0], `${what} key`), expectCount(pair[1], `${what} value`)];
  });
  assertSorted(pairs.map((pair) => pair[0]), what);
  return pairs;
}

type Row = readonly unknown[];

function sessionRow(stored: StoredSession): Row {
  const s = stored.session;
  const serviceChecks = s.ServiceChecks === null ? null : s.ServiceChecks.map((check) => [check.ID, check.Namespace]);
  return [s.ID, s.Name, s.Node, s.LockDelay, s.Behavior, s.TTL, s.NodeChecks, serviceChecks, s.CreateIndex, s.ModifyIndex, stored.ttlNs];
}

function decodeSessions(value: unknown): SessionSnapshot {
  const raw = expectObject(value, 'sessions');
  const sessions = expectArray(raw['sessions'], 'sessions').map((item): StoredSession => {
    const row = expectArray(item, 'session row');
    assert(row.length === 11, 'session row has 11 fields');
    const serviceChecks = row[7] === null ? null : expectArray(row[7], 'ServiceChecks').map((check) => {
      const pair = expectArray(check, 'service check');
      return { ID: expectString(pair[0], 'service check ID'), Namespace: expectString(pair[1], 'Namespace') };
    });
    const session = Object.freeze({
      ID: expectString(row[0], 'ID'), Name: expectString(row[1], 'Name'), Node: expectString(row[2], 'Node'),
      LockDelay: expectCount(row[3], 'LockDelay'), Behavior: expectOneOf(row[4], SESSION_BEHAVIORS, 'Behavior'),
      TTL: expectString(row[5], 'TTL'), NodeChecks: expectStringArray(row[6], 'NodeChecks'), ServiceChecks: serviceChecks,
      CreateIndex: expectCount(row[8], 'CreateIndex'), ModifyIndex: expectCount(row[9], 'ModifyIndex'),
    });
    return { session, ttlNs: expectCount(row[10], 'ttlNs') };
  });
  assertSorted(sessions.map((stored) => stored.session.ID), 'sessions');
  return { index: expectCount(raw['index'], 'sessions index'), sessions };
}

function nodeRow(node: CatalogNode): Row {
  return [node.ID, node.Node, node.Address, node.Datacenter, Object.entries(node.TaggedAddresses),
    Object.entries(node.Meta), node.CreateIndex, node.ModifyIndex];
}

function serviceRow(s: CatalogService): Row {
  return [s.Node, s.ID, s.Service, s.Tags, s.Address, Object.entries(s.Meta), s.Port, s.Weights.Passing, s.Weights.Warning,
    s.EnableTagOverride, s.CreateIndex, s.ModifyIndex];
}

function decodeServices(value: unknown): CatalogService[] {
  const services = expectArray(value, 'services').map((item): CatalogService => {
    const row = expectArray(item, 'service row');
    assert(row.length === 12, 'service row has 12 fields');
    return {
      Node: expectString(row[0], 'Node'), ID: expectString(row[1], 'ID'), Service: expectString(row[2], 'Service'),
      Tags: expectStringArray(row[3], 'Tags'), Address: expectString(row[4], 'Address'), Meta: decodeRecord(row[5], 'Meta'),
      Port: expectCount(row[6], 'Port'), Weights: { Passing: expectCount(row[7], 'Passing'), Warning: expectCount(row[8], 'Warning') },
      EnableTagOverride: expectBoolean(row[9], 'EnableTagOverride'), CreateIndex: expectCount(row[10], 'CreateIndex'),
      ModifyIndex: expectCount(row[11], 'ModifyIndex'),
    };
  });
  for (let i = 1; i < services.length; i++) {
    const [a, b] = [services[i - 1] as CatalogService, services[i] as CatalogService];
    const order = compareKeys(a.Node, b.Node);
    assert(order < 0 || (order === 0 && compareKeys(a.ID, b.ID) < 0), 'services are sorted by Node, then ID, and unique');
  }
  return services;
}

function checkRow(c: HealthCheck): Row {
  return [c.Node, c.CheckID, c.Name, c.Status, c.Notes, c.Output, c.ServiceID, c.ServiceName, c.ServiceTags,
    c.Type, c.Interval, c.Timeout, c.CreateIndex, c.ModifyIndex];
}

function decodeCatalog(value: unknown, withServices: boolean): CatalogSnapshot {
  const raw = expectObject(value, 'catalog');
  const nodes = expectArray(raw['nodes'], 'nodes').map((item): CatalogNode => {
    const row = expectArray(item, 'node row');
    assert(row.length === 8, 'node row has 8 fields');
    return {
      ID: expectString(row[0], 'ID'), Node: expectString(row[1], 'Node'), Address: expectString(row[2], 'Address'),
      Datacenter: expectString(row[3], 'Datacenter'), TaggedAddresses: decodeRecord(row[4], 'TaggedAddresses'),
      Meta: decodeRecord(row[5], 'Meta'), CreateIndex: expectCount(row[6], 'CreateIndex'), ModifyIndex: expectCount(row[7], 'ModifyIndex'),
    };
  });
  assertSorted(nodes.map((node) => node.Node), 'nodes');
  const checks = expectArray(raw['checks'], 'checks').map((item): HealthCheck => {
    const row = expectArray(item, 'check row');
    assert(row.length === 14, 'check row has 14 fields');
    return {
      Node: expectString(row[0], 'Node'), CheckID: expectString(row[1], 'CheckID'), Name: expectString(row[2], 'Name'),
      Status: expectOneOf(row[3], HEALTH_STATUSES, 'Status'), Notes: expectString(row[4], 'Notes'),
      Output: expectString(row[5], 'Output'), ServiceID: expectString(row[6], 'ServiceID'),
      ServiceName: expectString(row[7], 'ServiceName'), ServiceTags: expectStringArray(row[8], 'ServiceTags'),
      Type: expectString(row[9], 'Type'), Interval: expectString(row[10], 'Interval'), Timeout: expectString(row[11], 'Timeout'),
      CreateIndex: expectCount(row[12], 'CreateIndex'), ModifyIndex: expectCount(row[13], 'ModifyIndex'),
    };
  });
  return {
    nodesIndex: expectCount(raw['nodesIndex'], 'nodesIndex'),
    servicesIndex: withServices ? expectCount(raw['servicesIndex'], 'servicesIndex') : 0,
    checksIndex: expectCount(raw['checksIndex'], 'checksIndex'),
    nodes,
    services: withServices ? decodeServices(raw['services']) : [],
    checks,
  };
}

function decodeRecord(value: unknown, what: string): Record<string, string> {
  const pairs = expectArray(value, what).map((item): [string, string] => {
    const pair = expectArray(item, what);
    assert(pair.length === 2, `${what} pair`);
    return [expectString(pair[0], `${what} key`), expectString(pair[1], `${what} value`)];
  });
  return Object.fromEntries(pairs) as Record<string, string>;
}

function assertSorted(keys: readonly string[], what: string): void {
  for (let i = 1; i < keys.length; i++) {
    assert(compareKeys(keys[i - 1] as string, keys[i] as string) < 0, `${what} are sorted and unique`);
  }
}
