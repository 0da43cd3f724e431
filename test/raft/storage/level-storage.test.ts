import { createHash } from 'node:crypto';
import { rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { EMPTY_HARD_STATE } from '../../../src/raft/core/types.js';
import type { Entry } from '../../../src/raft/core/types.js';
import { LevelStorage } from '../../../src/raft/storage/level-storage.js';
import type { LevelStorageOptions, StorageLogger } from '../../../src/raft/storage/level-storage.js';
import { SnapshotStore } from '../../../src/raft/storage/snapshot-store.js';
import {
  entries,
  hardState,
  request,
  snapshot,
  snapshotDirectoryNames,
  storedRecordRanges,
} from './storage-helpers.js';

/** A logger that records warnings, so tests can assert on them. */
function recordingLogger(): StorageLogger & { messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (_fields, message) => messages.push(message) };
}

async function opened(options: LevelStorageOptions): Promise<{ storage: LevelStorage; state: Awaited<ReturnType<LevelStorage['load']>> }> {
  const storage = new LevelStorage(options);
  const state = await storage.load();
  return { storage, state };
}

/** Closes `storage`, reopens the same data dir and loads it. */
async function reopen(storage: LevelStorage, options: LevelStorageOptions) {
  await storage.close();
  return opened(options);
}

t.test('a new data dir loads empty', async (t) => {
  const { storage, state } = await opened({ dataDir: t.testdir() });
  t.same(state, { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] });
  await storage.close();
  await storage.close(); // idempotent
});

t.test('hard state and entries survive close and reopen', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 3, 1) }));
  await storage.persist(request({ hardState: hardState(2, 's2', 3), entries: entries(4, 5, 2) }));
  await storage.persist(request({ hardState: hardState(2, 's2', 5), sync: false })); // commit hint only
  const { storage: again, state } = await reopen(storage, options);
  t.same(state.hardState, hardState(2, 's2', 5));
  t.same(state.entries, [...entries(1, 3, 1), ...entries(4, 5, 2)]);
  t.ok(state.entries.every((e) => e.data.constructor === Uint8Array), 'data comes back as plain Uint8Array');
  t.equal(state.snapshot, null);
  await again.close();
});

t.test('all entry types round trip', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  const written = [
    { index: 1, term: 1, type: 'noop' as const, data: new Uint8Array() },
    { index: 2, term: 1, type: 'config' as const, data: new TextEncoder().encode('{"servers":[]}') },
    { index: 3, term: 1, type: 'normal' as const, data: new Uint8Array(100_000).fill(7) },
  ];
  await storage.persist(request({ hardState: hardState(1, null, 0), entries: written }));
  const { storage: again, state } = await reopen(storage, options);
  t.same(state.entries, written);
  await again.close();
});

t.test('new entries replace the conflicting suffix, and only it', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 10, 1) }));
  await storage.persist(request({ hardState: hardState(2, null, 0), entries: entries(6, 7, 2) }));
  await storage.close();
  t.same(await storedRecordRanges(options.dataDir), [[1, 5], [6, 7]], 'the segment 1..10 is cut to 1..5; 8..10 are gone');
  const { storage: again, state } = await opened(options);
  t.same(state.entries, [...entries(1, 5, 1), ...entries(6, 7, 2)]);
  // Overwriting in the middle without shortening: 4..10 replace 4..7 and extend.
  await again.persist(request({ hardState: hardState(3, null, 0), entries: entries(4, 10, 3) }));
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState.entries, [...entries(1, 3, 1), ...entries(4, 10, 3)]);
  await third.close();
  t.same(await storedRecordRanges(options.dataDir), [[1, 3], [4, 10]], 'both later segments replaced, the first cut');
});

t.test('a conflicting suffix that starts at a segment boundary, or spans several segments', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  for (const [first, last] of [[1, 3], [4, 6], [7, 9], [10, 12]] as const) {
    await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(first, last, 1) }));
  }
  await storage.persist(request({ hardState: hardState(2, null, 0), entries: entries(7, 8, 2) }));
  await storage.close();
  t.same(await storedRecordRanges(options.dataDir), [[1, 3], [4, 6], [7, 8]], 'from a boundary: later segments go, none is cut');
  const { storage: again, state } = await opened(options);
  t.same(state.entries, [...entries(1, 6, 1), ...entries(7, 8, 2)]);
  await again.persist(request({ hardState: hardState(3, null, 0), entries: entries(5, 5, 3) }));
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState.entries, [...entries(1, 4, 1), ...entries(5, 5, 3)]);
  await third.close();
  t.same(await storedRecordRanges(options.dataDir), [[1, 3], [4, 4], [5, 5]]);
});

t.test('a new leader overwrites from the log start, inside a segment a compaction cut', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 5), entries: entries(1, 10, 1) }));
  await storage.saveSnapshot(snapshot(5, 1), 5); // the segment 1..10 stays: 6..10 are in the log
  await storage.persist(request({ hardState: hardState(2, null, 5), entries: entries(6, 7, 2) }));
  const { storage: again, state } = await reopen(storage, options);
  t.same(state.snapshot, snapshot(5, 1));
  t.same(state.entries, entries(6, 7, 2));
  await again.close();
  t.same(await storedRecordRanges(options.dataDir), [[6, 7]], 'no record holding only compacted entries is left');
  // From inside the log, past the start: the kept part of the cut segment moves to the log start.
  const other = { dataDir: t.testdir() };
  const { storage: second } = await opened(other);
  await second.persist(request({ hardState: hardState(1, 's1', 5), entries: entries(1, 10, 1) }));
  await second.saveSnapshot(snapshot(5, 1), 5);
  await second.persist(request({ hardState: hardState(2, null, 5), entries: entries(8, 9, 2) }));
  const { storage: secondAgain, state: secondState } = await reopen(second, other);
  t.same(secondState.entries, [...entries(6, 7, 1), ...entries(8, 9, 2)]);
  await secondAgain.persist(request({ hardState: hardState(2, null, 9), entries: entries(10, 11, 2) }));
  await secondAgain.saveSnapshot(snapshot(9, 2), 9);
  const { storage: secondThird, state: secondThirdState } = await reopen(secondAgain, other);
  t.same(secondThirdState.entries, entries(10, 11, 2));
  await secondThird.close();
  t.same(await storedRecordRanges(other.dataDir), [[10, 11]]);
});

t.test('a commit beyond the log end is clamped, not refused', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 100), entries: entries(1, 5, 1) }));
  const { storage: again, state } = await reopen(storage, options);
  t.same(state.hardState, hardState(1, 's1', 5));
  await again.close();
});

t.test('saveSnapshot compacts the log through compactIndex', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 10), entries: entries(1, 4, 1) }));
  await storage.persist(request({ hardState: hardState(1, 's1', 10), entries: entries(5, 10, 1) }));
  await storage.saveSnapshot(snapshot(8, 1), 5);
  await storage.persist(request({ hardState: hardState(1, 's1', 12), entries: entries(11, 12, 1) }));
  await storage.close();
  // 1..4 is gone whole; 5..10 straddles the compaction point and stays (6..8 kept for laggards).
  t.same(await storedRecordRanges(options.dataDir), [[5, 10], [11, 12]], 'segments through 5 are gone, the one across it stays');
  t.same(await snapshotDirectoryNames(options.dataDir), ['1-8.snap']);
  const { storage: again, state } = await opened(options);
  t.same(state.snapshot, snapshot(8, 1));
  t.same(state.entries, entries(9, 12, 1), 'only entries after the snapshot are loaded');
  t.same(state.hardState, hardState(1, 's1', 12));
  // Compacting again, up to the snapshot itself.
  await again.saveSnapshot(snapshot(12, 1), 12);
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState.snapshot, snapshot(12, 1));
  t.same(thirdState.entries, []);
  await third.close();
  t.same(await storedRecordRanges(options.dataDir), []);
  const { storage: fourth } = await opened(options);
  await fourth.persist(request({ entries: entries(13, 14, 1) }));
  const { storage: fifth, state: fifthState } = await reopen(fourth, options);
  t.same(fifthState.entries, entries(13, 14, 1));
  await fifth.close();
});

t.test('a compaction inside a segment keeps it until a later compaction passes its end', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 10), entries: entries(1, 10, 1) }));
  await storage.saveSnapshot(snapshot(3, 1), 3);
  await storage.saveSnapshot(snapshot(7, 1), 7);
  const { storage: again, state } = await reopen(storage, options);
  t.same(state.entries, entries(8, 10, 1), '1..7 are skipped inside the segment');
  await again.persist(request({ hardState: hardState(1, 's1', 12), entries: entries(11, 12, 1) }));
  await again.saveSnapshot(snapshot(11, 1), 10);
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState.entries, entries(12, 12, 1));
  await third.close();
  t.same(await storedRecordRanges(options.dataDir), [[11, 12]], 'the compaction through 10 removed the segment 1..10');
});

t.test('a large batch is split into segments, and each loads', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  const big = (index: number): { index: number; term: number; type: 'normal'; data: Uint8Array } => ({
    index,
    term: 1,
    type: 'normal',
    data: new Uint8Array(400 * 1024).fill(index),
  });
  const written = [big(1), big(2), big(3), big(4), big(5), ...entries(6, 8, 1)];
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: written }));
  const { storage: again, state } = await reopen(storage, options);
  // Compared as bytes: t.same walks 2 MB of typed arrays element by element, for seconds.
  const summary = (list: readonly Entry[]): string[] => list.map((e) => `${e.index}@${e.term} ${e.type} ${createHash('sha256').update(e.data).digest('hex')}`);
  t.same(summary(state.entries), summary(written));
  await again.close();
  t.same(await storedRecordRanges(options.dataDir), [[1, 2], [3, 4], [5, 8]], 'split at SEGMENT_BYTES_TARGET (1 MiB)');
});

t.test('a snapshot received from the leader replaces the whole log', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 3), entries: entries(1, 10, 1) }));
  await storage.persist(request({ hardState: hardState(3, null, 20), snapshot: snapshot(20, 3), entries: entries(21, 22, 3) }));
  await storage.close();
  t.same(await storedRecordRanges(options.dataDir), [[21, 22]]);
  const { storage: again, state } = await opened(options);
  t.same(state, { hardState: hardState(3, null, 20), snapshot: snapshot(20, 3), entries: entries(21, 22, 3) });
  // A snapshot below the stored log's end also drops everything; the core resends what stays.
  await again.persist(request({ entries: entries(23, 30, 3) }));
  await again.persist(request({ hardState: hardState(4, null, 25), snapshot: snapshot(25, 3) }));
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState, { hardState: hardState(4, null, 25), snapshot: snapshot(25, 3), entries: [] });
  await third.close();
  t.same(await storedRecordRanges(options.dataDir), []);
});

t.test('only the newest snapshotsRetained snapshots remain, and no temp files', async (t) => {
  const options = { dataDir: t.testdir(), snapshotsRetained: 2 };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(2, 's1', 0), entries: [...entries(1, 5, 1), ...entries(6, 12, 2)] }));
  for (const index of [2, 4, 6, 8, 10]) await storage.saveSnapshot(snapshot(index, index <= 5 ? 1 : 2), index - 1);
  t.same(await snapshotDirectoryNames(options.dataDir), ['2-10.snap', '2-8.snap']);
  await storage.persist(request({ hardState: hardState(3, null, 0), snapshot: snapshot(15, 3) }));
  t.same(await snapshotDirectoryNames(options.dataDir), ['2-10.snap', '3-15.snap'], 'ordered by index, not by name');
  await storage.close();
  const single = { dataDir: t.testdir(), snapshotsRetained: 1 };
  const { storage: one } = await opened(single);
  await one.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 5, 1) }));
  await one.saveSnapshot(snapshot(3, 1), 0);
  await one.saveSnapshot(snapshot(5, 1), 0);
  t.same(await snapshotDirectoryNames(single.dataDir), ['1-5.snap']);
  await one.close();
});

t.test('a leftover temp file from a crashed snapshot write is removed at load', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 5, 1) }));
  await storage.saveSnapshot(snapshot(3, 1), 2);
  await storage.close();
  await writeFile(join(options.dataDir, 'raft', 'snapshots', '1-5.snap.tmp'), 'half a snapshot');
  await writeFile(join(options.dataDir, 'raft', 'snapshots', '1-4.snap.7.tmp'), 'half of one written ahead of the turn');
  const { storage: again, state } = await opened(options);
  t.same(await snapshotDirectoryNames(options.dataDir), ['1-3.snap']);
  t.same(state.snapshot, snapshot(3, 1));
  await again.close();
});

t.test('a snapshot staged ahead of the turn: written while appends go on, then saved without a second write', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 10), entries: entries(1, 10, 1) }));
  // Staging only touches the snapshot directory: appends may overlap it (no "calls must not overlap").
  const staging = storage.stageSnapshot(snapshot(8, 1));
  await storage.persist(request({ hardState: hardState(1, 's1', 12), entries: entries(11, 12, 1) }));
  await staging;
  const path = join(options.dataDir, 'raft', 'snapshots', '1-8.snap');
  const staged = await stat(path);
  t.same(await snapshotDirectoryNames(options.dataDir), ['1-8.snap'], 'the file is durable before saveSnapshot');
  await storage.saveSnapshot(snapshot(8, 1), 8);
  t.equal((await stat(path)).ino, staged.ino, 'saveSnapshot only compacted: the staged file was not written again');
  const { storage: again, state } = await reopen(storage, options);
  t.same(state, { hardState: hardState(1, 's1', 12), snapshot: snapshot(8, 1), entries: entries(9, 12, 1) });
  // A different snapshot than the staged one is written by saveSnapshot itself.
  await again.stageSnapshot(snapshot(10, 1));
  await again.saveSnapshot(snapshot(11, 1), 10);
  t.same(await snapshotDirectoryNames(options.dataDir), ['1-10.snap', '1-11.snap']);
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState.snapshot, snapshot(11, 1));
  await third.close();
});

t.test('a crash after staging, before saveSnapshot: the log still continues the staged snapshot', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(2, 's1', 12), entries: [...entries(1, 6, 1), ...entries(7, 12, 2)] }));
  await storage.stageSnapshot(snapshot(9, 2));
  const { storage: again, state } = await reopen(storage, options);
  t.same(state, { hardState: hardState(2, 's1', 12), snapshot: snapshot(9, 2), entries: entries(10, 12, 2) }, 'started from the staged file, every later entry kept');
  await again.saveSnapshot(snapshot(11, 2), 10);
  const { storage: third, state: thirdState } = await reopen(again, options);
  t.same(thirdState, { hardState: hardState(2, 's1', 12), snapshot: snapshot(11, 2), entries: entries(12, 12, 2) });
  await third.close();
});

t.test('a crash between a received snapshot file and its batch is finished at load', async (t) => {
  const options = { dataDir: t.testdir() };
  const logger = recordingLogger();
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 3), entries: entries(1, 10, 1) }));
  await storage.close();
  // The file persist() writes first, without the batch that would have followed.
  const files = new SnapshotStore(join(options.dataDir, 'raft', 'snapshots'), 2);
  await files.write(snapshot(20, 3));
  const { storage: again, state } = await opened({ ...options, logger });
  t.same(state.snapshot, snapshot(20, 3));
  t.same(state.entries, [], 'the log the snapshot replaces is dropped');
  t.same(state.hardState, hardState(1, 's1', 20), 'commit covers the snapshot');
  t.match(logger.messages, [/finishing a snapshot install that a crash interrupted/]);
  await again.persist(request({ hardState: hardState(3, null, 21), entries: entries(21, 21, 3) }));
  await again.close();
  t.same(await storedRecordRanges(options.dataDir), [[21, 21]]);
  const { storage: third, state: thirdState } = await opened(options);
  t.same(thirdState.entries, entries(21, 21, 3));
  await third.close();
});

t.test('a log that matches the received snapshot at its index is kept after it', async (t) => {
  const options = { dataDir: t.testdir() };
  const logger = recordingLogger();
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 3), entries: entries(1, 10, 1) }));
  await storage.close();
  await new SnapshotStore(join(options.dataDir, 'raft', 'snapshots'), 2).write(snapshot(7, 1));
  const { storage: again, state } = await opened({ ...options, logger });
  t.same(state.entries, entries(8, 10, 1));
  t.same(logger.messages, []);
  await again.close();
});

t.test('write failures reject, and the storage refuses everything after', async (t) => {
  const options = { dataDir: t.testdir() };
  const { storage } = await opened(options);
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 5, 1) }));
  // Replace the snapshot directory with a file: the temp file cannot be created (even as root).
  const directory = join(options.dataDir, 'raft', 'snapshots');
  await rm(directory, { recursive: true });
  await writeFile(directory, 'not a directory');
  await t.rejects(storage.saveSnapshot(snapshot(3, 1), 3), { code: 'ENOTDIR' });
  await t.rejects(storage.persist(request({ entries: entries(6, 6, 1) })), { message: /failed earlier/ });
  await storage.close();
  const { storage: closed } = await opened({ dataDir: t.testdir() });
  await closed.close();
  await t.rejects(closed.persist(request({ hardState: hardState(1, null, 0) })), { code: 'LEVEL_DATABASE_NOT_OPEN' });
});

t.test('programmer errors are assertions', async (t) => {
  const { storage } = await opened({ dataDir: t.testdir() });
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 5, 1) }));
  await t.rejects(storage.persist(request({ entries: entries(7, 8, 1) })), { name: 'AssertionError', message: /gap/ });
  await t.rejects(storage.saveSnapshot(snapshot(9, 1), 9), { name: 'AssertionError', message: /ahead of the stored log/ });
  await t.rejects(storage.saveSnapshot(snapshot(4, 1), 5), { name: 'AssertionError', message: /does not cover/ });
  await storage.close();
});
