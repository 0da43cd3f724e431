import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import { crc32 } from '../../../src/lib/crc32.js';
import type { Entry, HardState, Snapshot } from '../../../src/raft/core/types.js';
import type { PersistRequest } from '../../../src/raft/storage/raft-storage.js';
import {
  decodeLogRecord,
  decodeMeta,
  encodeHardState,
  ENTRY_KEYS_END,
  ENTRY_KEYS_START,
  entryKey,
  HARD_STATE_KEY,
  indexOfEntryKey,
  META_KEY,
} from '../../../src/raft/storage/record-codec.js';

/** Shared builders for the storage tests. */

const encoder = new TextEncoder();

/** A normal entry whose data names its index and term, so mix-ups show. */
export function entry(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: encoder.encode(`command ${index}@${term}`) };
}

/** Entries first..last, all of `term`. */
export function entries(first: number, last: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let index = first; index <= last; index++) result.push(entry(index, term));
  return result;
}

/** A hard state. */
export function hardState(term: number, vote: string | null, commit: number): HardState {
  return { term, vote, commit };
}

/** A persist request; sync by default. */
export function request(parts: Partial<PersistRequest>): PersistRequest {
  return { hardState: null, entries: [], snapshot: null, sync: true, ...parts };
}

/** A snapshot at index/term with a small configuration and data naming it. */
export function snapshot(index: number, term: number): Snapshot {
  return {
    meta: {
      index,
      term,
      configuration: { servers: [{ id: 's1', address: '127.0.0.1:8300', voter: true }, { id: 's2', address: '127.0.0.2:8300', voter: false }] },
    },
    data: encoder.encode(`state through ${index}@${term}`),
  };
}

/** The raw LevelDB of a data dir (open only while no LevelStorage has it open). */
export function openRawLog(dataDir: string): Level<Uint8Array, Uint8Array> {
  return new Level<Uint8Array, Uint8Array>(join(dataDir, 'raft', 'log'), { keyEncoding: 'view', valueEncoding: 'view' });
}

/** The key index of every stored log record (segment starts), in key order. */
export async function storedRecordStarts(dataDir: string): Promise<number[]> {
  const db = openRawLog(dataDir);
  try {
    const indexes: number[] = [];
    for await (const key of db.keys({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END })) indexes.push(indexOfEntryKey(key));
    return indexes;
  } finally {
    await db.close();
  }
}

/** Every stored log record as [first, last] index of the entries it holds, in key order. */
export async function storedRecordRanges(dataDir: string): Promise<[number, number][]> {
  const db = openRawLog(dataDir);
  try {
    const metaValue = await db.get(META_KEY);
    const formatVersion = metaValue === undefined ? 2 : decodeMeta(metaValue).formatVersion;
    const ranges: [number, number][] = [];
    for await (const [key, value] of db.iterator({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END })) {
      const held = decodeLogRecord(value, indexOfEntryKey(key), formatVersion);
      ranges.push([held[0]?.index ?? 0, held.at(-1)?.index ?? 0]);
    }
    return ranges;
  } finally {
    await db.close();
  }
}

/** The format version the metadata record of a data dir names (null: no metadata). */
export async function storedFormatVersion(dataDir: string): Promise<number | null> {
  const db = openRawLog(dataDir);
  try {
    const value = await db.get(META_KEY);
    return value === undefined ? null : decodeMeta(value).formatVersion;
  } finally {
    await db.close();
  }
}

/**
 * Format 1 as the first release wrote it, frozen here rather than taken from the codec, so a
 * change to the codec cannot quietly change what "a format 1 log" means in these tests: one
 * record per entry under entryKey(index), u32 BE CRC-32 + MessagePack [index, term, typeCode,
 * data]; metadata [1, logStartIndex, lastIndex]; the hard state as in format 2.
 */
const format1Packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false, mapsAsObjects: true, int64AsType: 'number' });
const FORMAT_1_TYPE_CODES = { normal: 0, noop: 1, config: 2 } as const;

function withCrc(payload: Uint8Array): Uint8Array {
  const record = new Uint8Array(4 + payload.length);
  new DataView(record.buffer).setUint32(0, crc32(payload));
  record.set(payload, 4);
  return record;
}

/** A format 1 entry record. */
export function encodeFormat1Entry(entry: Entry): Uint8Array {
  return withCrc(format1Packr.pack([entry.index, entry.term, FORMAT_1_TYPE_CODES[entry.type], entry.data]));
}

/** A format 1 metadata record. */
export function encodeFormat1Meta(logStartIndex: number, lastIndex: number): Uint8Array {
  return withCrc(format1Packr.pack([1, logStartIndex, lastIndex]));
}

/** A CRC-protected record holding `payload` as it is (for undecodable or odd records). */
export function recordOf(payload: Uint8Array): Uint8Array {
  return withCrc(payload);
}

/**
 * Writes a format 1 log into the (new or format 1) data dir as a format 1 server did: the entries
 * `stored` (contiguous, from logStartIndex), the hard state and the metadata, in one synced batch.
 */
export async function writeFormat1Log(dataDir: string, stored: readonly Entry[], hard: HardState, logStartIndex = stored[0]?.index ?? 1): Promise<void> {
  const db = openRawLog(dataDir);
  try {
    const lastIndex = stored.at(-1)?.index ?? logStartIndex - 1;
    await db.batch(
      [
        ...stored.map((e) => ({ type: 'put' as const, key: entryKey(e.index), value: encodeFormat1Entry(e) })),
        { type: 'put' as const, key: HARD_STATE_KEY, value: encodeHardState(hard) },
        { type: 'put' as const, key: META_KEY, value: encodeFormat1Meta(logStartIndex, lastIndex) },
      ],
      { sync: true },
    );
  } finally {
    await db.close();
  }
}

/** The file names in the snapshot directory, sorted. */
export async function snapshotDirectoryNames(dataDir: string): Promise<string[]> {
  return (await readdir(join(dataDir, 'raft', 'snapshots'))).sort();
}

/** first..last as an array. */
export function range(first: number, last: number): number[] {
  const result: number[] = [];
  for (let index = first; index <= last; index++) result.push(index);
  return result;
}
