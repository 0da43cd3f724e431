import { join } from 'node:path';
import t from 'tap';
import type { Snapshot } from '../../../src/raft/core/types.js';
import { LevelStorage } from '../../../src/raft/storage/level-storage.js';
import type { StorageLogger } from '../../../src/raft/storage/level-storage.js';
import { encodeSegment, entryKey } from '../../../src/raft/storage/record-codec.js';
import { SnapshotStore } from '../../../src/raft/storage/snapshot-store.js';
import {
  encodeFormat1Entry,
  entries,
  entry,
  hardState,
  openRawLog,
  range,
  request,
  snapshot,
  storedFormatVersion,
  storedRecordRanges,
  writeFormat1Log,
} from './storage-helpers.js';

/**
 * Format 1 (one record per entry, written by earlier releases) still loads, and a format 2
 * server carries on from it: it appends segments after the format 1 records, cuts and compacts
 * across both, and rewrites the metadata as format 2 in the first batch that writes a segment.
 */

/** A format 1 log: entries 1..10 (1..5 term 1, 6..10 term 2), hard state term 2, commit 8. */
const FORMAT_1_ENTRIES = [...entries(1, 5, 1), ...entries(6, 10, 2)];
const FORMAT_1_HARD_STATE = hardState(2, 's1', 8);

function silentLogger(): StorageLogger & { messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (_fields, message) => messages.push(message) };
}

async function load(dataDir: string): Promise<{ storage: LevelStorage; state: Awaited<ReturnType<LevelStorage['load']>> }> {
  const storage = new LevelStorage({ dataDir, logger: silentLogger() });
  const state = await storage.load();
  return { storage, state };
}

/** Writes a snapshot file as a server does before the batch that goes with it. */
async function writeSnapshotFile(dataDir: string, written: Snapshot): Promise<void> {
  const store = new SnapshotStore(join(dataDir, 'raft', 'snapshots'), 2);
  await store.init();
  await store.write(written);
}

/** Loads `dataDir` in a fresh LevelStorage, closes it, and returns what load() gave. */
async function reload(dataDir: string): Promise<Awaited<ReturnType<LevelStorage['load']>>> {
  const { storage, state } = await load(dataDir);
  await storage.close();
  return state;
}

t.test('a format 1 log loads as it was written, and loading changes nothing on disk', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  t.same(await reload(dataDir), { hardState: FORMAT_1_HARD_STATE, snapshot: null, entries: FORMAT_1_ENTRIES });
  t.equal(await storedFormatVersion(dataDir), 1, 'an older release could still open it');
  t.same(await storedRecordRanges(dataDir), range(1, 10).map((index) => [index, index]));
});

t.test('appending to a format 1 log, then reloading', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const { storage } = await load(dataDir);
  // A commit hint alone writes no metadata, so the log stays format 1.
  await storage.persist(request({ hardState: hardState(2, 's1', 9), sync: false }));
  await storage.persist(request({ hardState: hardState(2, 's1', 10), sync: true }));
  await storage.close();
  t.equal(await storedFormatVersion(dataDir), 1, 'hard state writes keep format 1');
  t.same((await reload(dataDir)).hardState, hardState(2, 's1', 10));
  const { storage: again } = await load(dataDir);
  await again.persist(request({ hardState: hardState(3, 's1', 10), entries: entries(11, 15, 3) }));
  await again.persist(request({ entries: entries(16, 16, 3), sync: false }));
  await again.close();
  t.equal(await storedFormatVersion(dataDir), 2, 'the batch that wrote a segment rewrote the metadata');
  t.same(await storedRecordRanges(dataDir), [...range(1, 10).map((index) => [index, index]), [11, 15], [16, 16]]);
  t.same(await reload(dataDir), {
    hardState: hardState(3, 's1', 10),
    snapshot: null,
    entries: [...FORMAT_1_ENTRIES, ...entries(11, 16, 3)],
  });
});

t.test('a new leader overwrites inside the format 1 records', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const { storage } = await load(dataDir);
  await storage.persist(request({ hardState: hardState(3, null, 5), entries: entries(7, 8, 3) }));
  await storage.close();
  t.same(await storedRecordRanges(dataDir), [...range(1, 6).map((index) => [index, index]), [7, 8]]);
  const state = await reload(dataDir);
  t.same(state.entries, [...FORMAT_1_ENTRIES.slice(0, 6), ...entries(7, 8, 3)]);
  // And again, from inside the segment now after them.
  const { storage: again } = await load(dataDir);
  await again.persist(request({ hardState: hardState(4, null, 5), entries: entries(8, 9, 4) }));
  await again.close();
  t.same((await reload(dataDir)).entries, [...FORMAT_1_ENTRIES.slice(0, 6), entry(7, 3), ...entries(8, 9, 4)]);
});

t.test('compaction through format 1 records and into the segments after them', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const { storage } = await load(dataDir);
  await storage.persist(request({ hardState: hardState(3, 's1', 14), entries: entries(11, 14, 3) }));
  await storage.saveSnapshot(snapshot(6, 2), 6);
  await storage.close();
  t.same(await storedRecordRanges(dataDir), [...range(7, 10).map((index) => [index, index]), [11, 14]]);
  t.same(await reload(dataDir), { hardState: hardState(3, 's1', 14), snapshot: snapshot(6, 2), entries: [...entries(7, 10, 2), ...entries(11, 14, 3)] });
  const { storage: again } = await load(dataDir);
  await again.saveSnapshot(snapshot(12, 3), 12);
  await again.close();
  t.same(await storedRecordRanges(dataDir), [[11, 14]], 'the segment across the compaction point stays whole');
  t.same(await reload(dataDir), { hardState: hardState(3, 's1', 14), snapshot: snapshot(12, 3), entries: entries(13, 14, 3) });
});

t.test('a compacted format 1 log loads after its snapshot, and takes a snapshot from the leader', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES.slice(4), FORMAT_1_HARD_STATE, 5);
  await writeSnapshotFile(dataDir, snapshot(4, 1));
  t.same(await reload(dataDir), { hardState: FORMAT_1_HARD_STATE, snapshot: snapshot(4, 1), entries: FORMAT_1_ENTRIES.slice(4) });
  const { storage } = await load(dataDir);
  await storage.persist(request({ hardState: hardState(3, null, 20), snapshot: snapshot(20, 3), entries: entries(21, 22, 3) }));
  await storage.close();
  t.same(await storedRecordRanges(dataDir), [[21, 22]], 'every format 1 record is gone');
  t.same(await reload(dataDir), { hardState: hardState(3, null, 20), snapshot: snapshot(20, 3), entries: entries(21, 22, 3) });
});

t.test('a snapshot install that a crash interrupted is finished over a format 1 log', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  await writeSnapshotFile(dataDir, snapshot(20, 3));
  const state = await reload(dataDir);
  t.same(state.snapshot, snapshot(20, 3));
  t.same(state.entries, []);
  t.same(await storedRecordRanges(dataDir), []);
  t.equal(await storedFormatVersion(dataDir), 2);
});

t.test('corruption in a format 1 log is still refused', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const db = openRawLog(dataDir);
  await db.del(entryKey(5));
  await db.close();
  const gap = new LevelStorage({ dataDir });
  await t.rejects(gap.load(), { name: 'CorruptionError', message: /gap in the log: entry 6 follows entry 4/ });
  await gap.close();
  const other = t.testdir();
  await writeFormat1Log(other, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const raw = openRawLog(other);
  await raw.put(entryKey(5), encodeFormat1Entry(entry(6, 1)));
  await raw.close();
  const mismatch = new LevelStorage({ dataDir: other });
  await t.rejects(mismatch.load(), { name: 'CorruptionError', message: /record at key index 5: record holds index 6/ });
  await mismatch.close();
});

t.test('a term that decreases from the format 1 records into the segments is refused', async (t) => {
  const dataDir = t.testdir();
  await writeFormat1Log(dataDir, FORMAT_1_ENTRIES, FORMAT_1_HARD_STATE);
  const { storage } = await load(dataDir);
  await storage.persist(request({ entries: entries(11, 12, 2) }));
  await storage.close();
  const db = openRawLog(dataDir);
  await db.put(entryKey(11), encodeSegment(entries(11, 12, 1)));
  await db.close();
  const again = new LevelStorage({ dataDir });
  await t.rejects(again.load(), { name: 'CorruptionError', message: /entry 11 has term 1, below term 2 of entry 10/ });
  await again.close();
});
