import t from 'tap';
import { Prng } from '../../../src/lib/prng.js';
import { EMPTY_HARD_STATE } from '../../../src/raft/core/types.js';
import type { Entry, InitialState } from '../../../src/raft/core/types.js';
import { LevelStorage } from '../../../src/raft/storage/level-storage.js';
import { MemoryStorage } from '../../../src/raft/storage/memory-storage.js';
import type { RaftStorage } from '../../../src/raft/storage/raft-storage.js';
import { entries, entry, hardState, request, snapshot } from './storage-helpers.js';

async function loaded(storage: MemoryStorage): Promise<MemoryStorage> {
  await storage.load();
  return storage;
}

t.test('a crash loses unsynced writes and keeps synced ones', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 3, 1) }));
  await storage.persist(request({ hardState: hardState(1, 's1', 3), entries: entries(4, 5, 1), sync: false }));
  t.equal(storage.unsyncedBatchCount, 1);
  const restarted = storage.crash();
  t.same(await restarted.load(), { hardState: hardState(1, 's1', 0), snapshot: null, entries: entries(1, 3, 1) });
  // Without a crash, a reload (here: of a crash that kept everything) sees every write.
  const kept = storage.crash(1);
  t.same((await kept.load()).entries, entries(1, 5, 1));
});

t.test('a later synced write makes earlier unsynced ones durable', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 2, 1), sync: false }));
  await storage.persist(request({ hardState: hardState(1, 's1', 2), sync: false }));
  await storage.persist(request({ entries: entries(3, 3, 1) }));
  t.equal(storage.unsyncedBatchCount, 0);
  t.same(await storage.crash().load(), { hardState: hardState(1, 's1', 2), snapshot: null, entries: entries(1, 3, 1) });
});

t.test('a synced request with nothing new still flushes earlier unsynced batches', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 2, 1), sync: false }));
  await storage.persist(request({}));
  t.same((await storage.crash().load()).entries, entries(1, 2, 1));
});

t.test('a crash may keep a prefix of whole unsynced batches, in order', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 1, 1) }));
  await storage.persist(request({ entries: entries(2, 3, 1), sync: false }));
  await storage.persist(request({ hardState: hardState(2, null, 0), entries: entries(3, 4, 2), sync: false }));
  await storage.persist(request({ entries: entries(5, 5, 2), sync: false }));
  t.same((await storage.crash(0).load()).entries, entries(1, 1, 1));
  t.same((await storage.crash(1).load()).entries, entries(1, 3, 1));
  const two = await storage.crash(2).load();
  t.same(two.entries, [...entries(1, 2, 1), ...entries(3, 4, 2)]);
  t.same(two.hardState, hardState(2, null, 0), 'hard state and entries of one batch survive together');
  t.same((await storage.crash(3).load()).entries, [...entries(1, 2, 1), ...entries(3, 5, 2)]);
  t.throws(() => storage.crash(4), { name: 'AssertionError' });
});

t.test('snapshots survive a crash; compaction and install are synced', async (t) => {
  const storage = await loaded(new MemoryStorage({ snapshotsRetained: 2 }));
  await storage.persist(request({ hardState: hardState(1, 's1', 6), entries: entries(1, 8, 1), sync: false }));
  await storage.saveSnapshot(snapshot(6, 1), 4);
  const afterSave = await storage.crash().load();
  t.same(afterSave, { hardState: hardState(1, 's1', 6), snapshot: snapshot(6, 1), entries: entries(7, 8, 1) });
  await storage.persist(request({ hardState: hardState(2, null, 20), snapshot: snapshot(20, 2), entries: entries(21, 21, 2), sync: false }));
  t.same(await storage.crash().load(), { hardState: hardState(2, null, 20), snapshot: snapshot(20, 2), entries: entries(21, 21, 2) });
  await storage.saveSnapshot(snapshot(21, 2), 21);
  const afterCompaction = await storage.crash().load();
  t.same(afterCompaction, { hardState: hardState(2, null, 21), snapshot: snapshot(21, 2), entries: [] }, 'commit covers the snapshot');
});

t.test('a write fault rejects and changes nothing', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 2, 1) }));
  storage.setWriteFault(new Error('EIO: fsync failed'));
  await t.rejects(storage.persist(request({ entries: entries(3, 3, 1) })), { message: 'EIO: fsync failed' });
  await t.rejects(storage.saveSnapshot(snapshot(2, 1), 2), { message: 'EIO: fsync failed' });
  t.same((await storage.crash().load()).entries, entries(1, 2, 1));
});

t.test('load clamps the commit hint and starts empty', async (t) => {
  t.same(await new MemoryStorage().load(), { hardState: EMPTY_HARD_STATE, snapshot: null, entries: [] });
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 50), entries: entries(1, 3, 1) }));
  t.same((await storage.crash().load()).hardState, hardState(1, 's1', 3));
});

/** A random but valid sequence of storage calls, applied to both storages alike. */
async function randomWorkload(prng: Prng, storages: readonly RaftStorage[], steps: number): Promise<void> {
  const terms = new Map<number, number>(); // index -> term of the stored log
  let logStart = 1;
  let lastIndex = 0;
  let term = 1;
  let persistedTerm = 0;
  let snapshotIndex = 0;
  let snapshotTerm = 0;
  for (let step = 0; step < steps; step++) {
    const choice = prng.nextInt(10);
    if (choice < 6) {
      const first = prng.between(Math.max(logStart, snapshotIndex + 1), lastIndex + 1);
      if (prng.chance(0.2)) term++;
      const written = entries(first, first + prng.between(0, 5), term);
      for (let index = first; index <= lastIndex; index++) terms.delete(index);
      for (const e of written) terms.set(e.index, e.term);
      lastIndex = first + written.length - 1;
      // The term is persisted no later than the first entry of that term (same batch).
      const hard = prng.chance(0.5) || term > persistedTerm ? hardState(term, 's1', prng.between(0, lastIndex + 3)) : null;
      persistedTerm = hard?.term ?? persistedTerm;
      for (const storage of storages) await storage.persist(request({ hardState: hard, entries: written, sync: prng.chance(0.8) }));
    } else if (choice < 8 && lastIndex >= 1) {
      const index = prng.between(Math.max(snapshotIndex, 1), lastIndex);
      const compactIndex = prng.between(Math.min(logStart - 1, index), index);
      // A compacted index can only be the previous snapshot's own.
      snapshotTerm = terms.get(index) ?? snapshotTerm;
      for (const storage of storages) await storage.saveSnapshot(snapshot(index, snapshotTerm), compactIndex);
      snapshotIndex = index;
      for (let i = logStart; i <= compactIndex; i++) terms.delete(i);
      logStart = Math.max(logStart, compactIndex + 1);
    } else {
      term++;
      const index = lastIndex + prng.between(1, 10);
      const after = prng.chance(0.5) ? entries(index + 1, index + prng.between(1, 3), term) : [];
      for (const storage of storages) {
        await storage.persist(request({ hardState: hardState(term, null, index), snapshot: snapshot(index, term), entries: after }));
      }
      persistedTerm = term;
      terms.clear();
      for (const e of after) terms.set(e.index, e.term);
      logStart = index + 1;
      snapshotIndex = index;
      snapshotTerm = term;
      lastIndex = after.at(-1)?.index ?? index;
    }
  }
}

t.test('MemoryStorage and LevelStorage load the same after the same calls', async (t) => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const prng = new Prng(seed);
    const dataDir = t.testdir();
    const memory = new MemoryStorage({ snapshotsRetained: 3 });
    const level = new LevelStorage({ dataDir, snapshotsRetained: 3 });
    await memory.load();
    await level.load();
    await randomWorkload(prng, [memory, level], 150);
    await level.close();
    const reopened = new LevelStorage({ dataDir });
    const fromLevel: InitialState = await reopened.load();
    await reopened.close();
    const fromMemory = await memory.crash(memory.unsyncedBatchCount).load();
    t.same(fromLevel, fromMemory, `seed=${seed}`);
    t.ok(fromLevel.entries.length + (fromLevel.snapshot === null ? 0 : 1) > 0, `seed=${seed} wrote something`);
  }
});

t.test('entries with a gap or below the log start are assertion failures', async (t) => {
  const storage = await loaded(new MemoryStorage());
  await storage.persist(request({ hardState: hardState(1, 's1', 0), entries: entries(1, 3, 1) }));
  await t.rejects(storage.persist(request({ entries: [entry(5, 1)] })), { name: 'AssertionError' });
  await t.rejects(storage.persist(request({ entries: [entry(4, 1), entry(6, 1)] })), { name: 'AssertionError' });
  await storage.saveSnapshot(snapshot(2, 1), 2);
  await t.rejects(storage.persist(request({ entries: [entry(2, 2)] })), { name: 'AssertionError' });
});
