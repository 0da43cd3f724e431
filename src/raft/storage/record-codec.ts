import { Packr } from 'msgpackr';
import { assert } from '../../lib/assert.js';
import { crc32 } from '../../lib/crc32.js';
import { CorruptionError } from '../../lib/errors.js';
import type { Entry, EntryType, HardState } from '../core/types.js';
import { ENTRY_DATA_BYTES_MAX, INDEX_MAX } from './limits.js';

/**
 * The LevelDB keys and values of the Raft log (`<dataDir>/raft/log`).
 *
 * Keys are fixed width and big-endian, so LevelDB's byte order is log order:
 *   'e' (0x65) + u64 BE index   a segment: entries of one persist() (split at SEGMENT_BYTES_TARGET)
 *                               from that index on; in format 1, the one entry at that index
 *   'h' (0x68)                  the hard state
 *   'm' (0x6d)                  log metadata: format version and where the log starts
 *
 * Every value is a record: u32 BE CRC-32 of the payload, then the payload, plain MessagePack:
 *   segment     [firstIndex, [[term, typeCode, data], ...]]   typeCode: 0 normal, 1 noop, 2 config
 *   entry       [index, term, typeCode, data]   (format 1: one entry per key; still read, never written)
 *   hard state  [term, vote | null, commit]
 *   metadata    [formatVersion, logStartIndex, lastIndex]
 * The metadata is rewritten by every batch that changes which entries are stored, so load() can
 * tell a log whose tail LevelDB lost (a flipped type byte turns a put into a delete) from a
 * shorter one.
 * The CRC catches a flipped bit or a torn value that LevelDB's own block checksums let through
 * (they are only verified with `paranoid_checks`/`verify_checksums`, which `level` leaves off).
 */

/**
 * Bumped on any incompatible change of keys or records; an unknown version refuses to load.
 * Format 2 stores a persisted batch of entries as one segment record: a LevelDB record per entry
 * cost 3–4× the CPU per entry (measured), a fifth of a follower's CPU under write load. Format 1
 * logs (a record per entry) still load, and a format 2 server appends segments after their
 * records (the first batch that writes a segment also rewrites the metadata as format 2); the
 * format 1 records go as they are compacted away or overwritten.
 */
export const LOG_FORMAT_VERSION = 2;

/** The formats load() accepts. */
export const LOG_FORMAT_VERSIONS_READABLE: readonly number[] = [1, 2];

/**
 * A segment record stays about this size (data plus per-entry overhead): larger batches are
 * split into several segments, so no LevelDB value grows with the batch. Far below
 * ENTRY_DATA_BYTES_MAX; a single larger entry is a segment of its own.
 */
export const SEGMENT_BYTES_TARGET = 1024 * 1024;

const ENTRY_KEY_PREFIX = 0x65; // 'e'
const ENTRY_KEY_BYTES = 9; // prefix + u64 index
const CRC_BYTES = 4;

/** The key of the hard state record. */
export const HARD_STATE_KEY: Uint8Array = Uint8Array.of(0x68); // 'h'
/** The key of the metadata record. */
export const META_KEY: Uint8Array = Uint8Array.of(0x6d); // 'm'
/** Lower bound (inclusive) of all entry keys, for iterators. */
export const ENTRY_KEYS_START: Uint8Array = Uint8Array.of(ENTRY_KEY_PREFIX);
/** Upper bound (exclusive) of all entry keys, for iterators. */
export const ENTRY_KEYS_END: Uint8Array = Uint8Array.of(ENTRY_KEY_PREFIX + 1);

/** Plain MessagePack with explicit options, so any peer or tool version reads it. */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

const TYPE_CODES: Readonly<Record<EntryType, number>> = { normal: 0, noop: 1, config: 2 };
const TYPES_BY_CODE: readonly EntryType[] = ['normal', 'noop', 'config'];

/**
 * Log metadata: the format, and which entries the log holds: exactly logStartIndex..lastIndex,
 * except that the first segment may still hold entries before logStartIndex that a compaction
 * inside it left there (load skips them).
 */
export interface LogMeta {
  readonly formatVersion: number;
  /** Every entry with a smaller index was compacted into a snapshot. 1 when nothing was. */
  readonly logStartIndex: number;
  /** The last stored entry's index; logStartIndex - 1 when none is stored. */
  readonly lastIndex: number;
}

/** The key of the log record (a segment, or a format 1 entry) that starts at `index`: 'e' + u64 big-endian. */
export function entryKey(index: number): Uint8Array {
  assert(Number.isSafeInteger(index), 'entryKey: index must be a safe integer');
  assert(index >= 0, 'entryKey: index must not be negative'); // 0 only as a range bound
  const key = new Uint8Array(ENTRY_KEY_BYTES);
  key[0] = ENTRY_KEY_PREFIX;
  new DataView(key.buffer).setBigUint64(1, BigInt(index));
  return key;
}

/** The index a log record key names; CorruptionError for a key that is not one. */
export function indexOfEntryKey(key: Uint8Array): number {
  if (key.length !== ENTRY_KEY_BYTES || key[0] !== ENTRY_KEY_PREFIX) {
    throw new CorruptionError(`raft log: malformed entry key ${hex(key)} (want 'e' + 8-byte index)`);
  }
  const index = new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(1);
  if (index < 1n || index > BigInt(INDEX_MAX)) {
    throw new CorruptionError(`raft log: entry key ${hex(key)} names index ${index}, outside 1..${INDEX_MAX}`);
  }
  return Number(index);
}

/** Encodes entries (contiguous, ascending) as one CRC-protected segment record. */
export function encodeSegment(entries: readonly Entry[]): Uint8Array {
  assert(entries.length > 0, 'encodeSegment: a segment holds at least one entry');
  const first = entries[0] as Entry;
  const rows = entries.map((entry, k) => {
    assertEntry(entry);
    assert(entry.index === first.index + k, 'encodeSegment: entries must be contiguous');
    assert(entry.data.length <= ENTRY_DATA_BYTES_MAX, 'encodeSegment: data beyond ENTRY_DATA_BYTES_MAX');
    return [entry.term, TYPE_CODES[entry.type], entry.data];
  });
  return withCrc(packr.pack([first.index, rows]));
}

/**
 * What a segment row costs beyond its data: array header, term, type code and bin header
 * (msgpack: at most 1 + 9 + 1 + 5 bytes). Counted so that a batch of many tiny entries is split
 * too: the target bounds the record, not only the data in it.
 */
const SEGMENT_ROW_OVERHEAD_BYTES = 16;

/**
 * Splits a persisted batch into segments of about `bytesTarget` (SEGMENT_BYTES_TARGET unless a
 * test asks for smaller ones); every segment holds at least one entry, so one entry larger than
 * the target is a segment of its own.
 */
export function splitSegments(entries: readonly Entry[], bytesTarget: number = SEGMENT_BYTES_TARGET): Entry[][] {
  assert(Number.isSafeInteger(bytesTarget), 'splitSegments: bytesTarget must be an integer');
  assert(bytesTarget >= 1, 'splitSegments: bytesTarget must be positive');
  const segments: Entry[][] = [];
  let current: Entry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const entryBytes = entry.data.length + SEGMENT_ROW_OVERHEAD_BYTES;
    if (current.length > 0 && bytes + entryBytes > bytesTarget) {
      segments.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entryBytes;
  }
  if (current.length > 0) segments.push(current);
  return segments;
}

/**
 * Decodes the record stored under `keyIndex`: a segment (format 2) or a single entry (format 1,
 * also found in format 2 logs that a format 1 server started). Returns its entries, which start
 * at keyIndex and are contiguous; CorruptionError otherwise. A log whose metadata says format 1
 * holds no segment: every batch that writes one also rewrites the metadata as format 2.
 */
export function decodeLogRecord(value: Uint8Array, keyIndex: number, formatVersion: number): Entry[] {
  assert(LOG_FORMAT_VERSIONS_READABLE.includes(formatVersion), 'decodeLogRecord: formatVersion must be readable');
  const where = `raft log: record at key index ${keyIndex}`;
  const fields = unpackRecord(value, where);
  if (Array.isArray(fields) && fields.length === 4) return [entryFromFields(fields as unknown[], keyIndex, where)];
  if (!Array.isArray(fields) || fields.length !== 2 || !Array.isArray(fields[1])) {
    throw new CorruptionError(`${where}: record is neither a segment [firstIndex, entries] nor an entry [index, term, type, data]`);
  }
  if (formatVersion === 1) throw new CorruptionError(`${where}: a segment record in a log whose metadata says format 1`);
  const [first, rows] = fields as [unknown, unknown[]];
  if (first !== keyIndex) throw new CorruptionError(`${where}: segment starts at ${String(first)}, which does not match its key`);
  if (rows.length === 0) throw new CorruptionError(`${where}: empty segment`);
  const entries = rows.map((row, k) => {
    if (!Array.isArray(row) || row.length !== 3) throw new CorruptionError(`${where}: segment entry ${k} is not [term, type, data]`);
    return entryFromFields([keyIndex + k, ...(row as unknown[])], keyIndex + k, where);
  });
  assert((entries[0] as Entry).index === keyIndex, 'decodeLogRecord: a segment starts at its key');
  return entries;
}

function entryFromFields(fields: readonly unknown[], expectedIndex: number, where: string): Entry {
  const [index, term, typeCode, data] = fields;
  if (!isIndex(index) || index < 1) throw new CorruptionError(`${where}: record index ${String(index)} is not a valid index`);
  if (index !== expectedIndex) throw new CorruptionError(`${where}: record holds index ${index}, which does not match its key`);
  if (!isIndex(term) || term < 1) throw new CorruptionError(`${where}: entry ${index}: term ${String(term)} is not a valid term`);
  const type = typeof typeCode === 'number' ? TYPES_BY_CODE[typeCode] : undefined;
  if (type === undefined) throw new CorruptionError(`${where}: entry ${index}: unknown entry type code ${String(typeCode)}`);
  if (!(data instanceof Uint8Array)) throw new CorruptionError(`${where}: entry ${index}: data is not binary`);
  if (data.length > ENTRY_DATA_BYTES_MAX) throw new CorruptionError(`${where}: entry ${index}: data of ${data.length} bytes exceeds the limit`);
  // Copy: msgpackr returns a view into the record buffer, and callers keep entries for long.
  const entry: Entry = { index, term, type, data: new Uint8Array(data) };
  assertEntry(entry);
  return entry;
}

/** Encodes the hard state as a CRC-protected record. */
export function encodeHardState(hardState: HardState): Uint8Array {
  assertHardState(hardState);
  return withCrc(packr.pack([hardState.term, hardState.vote, hardState.commit]));
}

/** Decodes the hard state record; CorruptionError names the fault. */
export function decodeHardState(value: Uint8Array): HardState {
  const where = 'raft log: hard state';
  const fields = unpackRecord(value, where);
  if (!Array.isArray(fields) || fields.length !== 3) throw new CorruptionError(`${where}: record is not [term, vote, commit]`);
  const [term, vote, commit] = fields as unknown[];
  if (!isIndex(term)) throw new CorruptionError(`${where}: term ${String(term)} is not a valid term`);
  if (vote !== null && typeof vote !== 'string') throw new CorruptionError(`${where}: vote is neither a server id nor null`);
  if (!isIndex(commit)) throw new CorruptionError(`${where}: commit ${String(commit)} is not a valid index`);
  const hardState: HardState = { term, vote, commit };
  assertHardState(hardState);
  return hardState;
}

/** Encodes the log metadata as a CRC-protected record. */
export function encodeMeta(meta: LogMeta): Uint8Array {
  assert(meta.formatVersion === LOG_FORMAT_VERSION, 'encodeMeta: only the current format is written');
  assert(isIndex(meta.logStartIndex) && meta.logStartIndex >= 1, 'encodeMeta: logStartIndex must be >= 1');
  assert(isIndex(meta.lastIndex) && meta.lastIndex >= meta.logStartIndex - 1, 'encodeMeta: lastIndex >= logStartIndex - 1');
  return withCrc(packr.pack([meta.formatVersion, meta.logStartIndex, meta.lastIndex]));
}

/** Decodes the metadata record; CorruptionError for a bad record or an unknown format version. */
export function decodeMeta(value: Uint8Array): LogMeta {
  const where = 'raft log: metadata';
  const fields = unpackRecord(value, where);
  if (!Array.isArray(fields) || fields.length !== 3) {
    throw new CorruptionError(`${where}: record is not [formatVersion, logStartIndex, lastIndex]`);
  }
  const [formatVersion, logStartIndex, lastIndex] = fields as unknown[];
  if (typeof formatVersion !== 'number' || !LOG_FORMAT_VERSIONS_READABLE.includes(formatVersion)) {
    throw new CorruptionError(`${where}: format version ${String(formatVersion)} is not supported (want ${LOG_FORMAT_VERSIONS_READABLE.join(' or ')})`);
  }
  if (!isIndex(logStartIndex) || logStartIndex < 1) {
    throw new CorruptionError(`${where}: log start index ${String(logStartIndex)} is not a valid index`);
  }
  if (!isIndex(lastIndex) || lastIndex < logStartIndex - 1) {
    throw new CorruptionError(`${where}: last index ${String(lastIndex)} is not valid for log start ${logStartIndex}`);
  }
  return { formatVersion, logStartIndex, lastIndex };
}

/** Asserts the invariants every entry handed to or returned by storage satisfies. */
export function assertEntry(entry: Entry): void {
  assert(isIndex(entry.index) && entry.index >= 1, 'entry index must be a safe integer >= 1');
  assert(isIndex(entry.term) && entry.term >= 1, 'entry term must be a safe integer >= 1');
  assert(TYPE_CODES[entry.type] !== undefined, 'entry type must be normal, noop or config');
  assert(entry.data instanceof Uint8Array, 'entry data must be a Uint8Array');
}

/** Asserts the invariants of a hard state. */
export function assertHardState(hardState: HardState): void {
  assert(isIndex(hardState.term), 'hard state term must be a safe integer >= 0');
  assert(isIndex(hardState.commit), 'hard state commit must be a safe integer >= 0');
  assert(hardState.vote === null || typeof hardState.vote === 'string', 'hard state vote must be a string or null');
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function withCrc(payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(CRC_BYTES + payload.length);
  new DataView(record.buffer).setUint32(0, crc32(payload));
  record.set(payload, CRC_BYTES);
  return record;
}

function unpackRecord(value: Uint8Array, where: string): unknown {
  if (value.length <= CRC_BYTES) throw new CorruptionError(`${where}: record of ${value.length} bytes is too short`);
  const stored = new DataView(value.buffer, value.byteOffset, value.byteLength).getUint32(0);
  const payload = value.subarray(CRC_BYTES);
  const actual = crc32(payload);
  if (stored !== actual) {
    throw new CorruptionError(`${where}: bad CRC (stored ${hex32(stored)}, computed ${hex32(actual)})`);
  }
  try {
    return packr.unpack(payload);
  } catch (error) {
    throw new CorruptionError(`${where}: undecodable record (${(error as Error).message})`, { cause: error });
  }
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

function hex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes).toString('hex')}`;
}
