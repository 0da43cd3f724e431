import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import type { Entry, HardState, Snapshot } from '../../../src/raft/core/types.js';
import type { PersistRequest } from '../../../src/raft/storage/raft-storage.js';
import { ENTRY_KEYS_END, ENTRY_KEYS_START, indexOfEntryKey } from '../../../src/raft/storage/record-codec.js';

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

/** Every stored entry index, in key order. */
export async function storedEntryIndexes(dataDir: string): Promise<number[]> {
  const db = openRawLog(dataDir);
  try {
    const indexes: number[] = [];
    for await (const key of db.keys({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END })) indexes.push(indexOfEntryKey(key));
    return indexes;
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
