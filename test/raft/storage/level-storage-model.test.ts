import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import type { Test } from 'tap';
import { Prng } from '../../../src/lib/prng.js';
import { EMPTY_HARD_STATE } from '../../../src/raft/core/types.js';
import type { Entry, EntryType, HardState, InitialState, Snapshot } from '../../../src/raft/core/types.js';
import { LevelStorage } from '../../../src/raft/storage/level-storage.js';
import type { StorageLogger } from '../../../src/raft/storage/level-storage.js';
import type { PersistRequest } from '../../../src/raft/storage/raft-storage.js';
import { SEGMENT_BYTES_TARGET } from '../../../src/raft/storage/record-codec.js';
import { SnapshotStore } from '../../../src/raft/storage/snapshot-store.js';
import { snapshot, storedRecordRanges, writeFormat1Log } from './storage-helpers.js';

/**
 * A seeded model test of LevelStorage's segment log. Each seed runs a random sequence of what a
 * Raft driver asks of storage: appends (batches of every size, some split into many segments,
 * synced or not, with and without hard state), a new leader's overwrite of a conflicting suffix
 * from a random index (inside a segment or at its start, down to the log start), snapshots with
 * compaction at a random index, snapshots installed from a leader, and close + reopen at random
 * points. After every reopen, what load() returns must equal a plain model: a map of entries, a
 * hard state and a list of snapshots. Some seeds start from a format 1 log (one record per
 * entry), some use the real segment size with large values.
 *
 * A failure prints its seed; replay one seed with SEED=<seed>.
 */

const SEEDS_COUNT = Number(process.env['STORAGE_MODEL_SEEDS'] ?? 300);
const STEPS_PER_SEED = 60;
/** Seeds run at once: each mostly waits for LevelDB's I/O threads. */
const SEEDS_CONCURRENT = 4;
/** Stop after this many failing seeds: the first ones say enough. */
const FAILURES_REPORTED_MAX = 5;
const SNAPSHOTS_RETAINED = 2;
/** Segment sizes the seeds pick from: tiny ones split nearly every batch. */
const SEGMENT_BYTES_TARGETS = [48, 200, 1024, 8192, SEGMENT_BYTES_TARGET] as const;
/** tmpfs on Linux; see scratchDirectory(). */
const TMPFS_DIRECTORY = '/dev/shm';
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'normal', 'normal', 'noop', 'config'];

/** What the storage must hold, kept as plainly as possible. */
class Model {
  /** Every entry the log holds, logStartIndex..lastIndex. */
  readonly entries = new Map<number, Entry>();
  logStartIndex = 1;
  lastIndex = 0;
  hardState: HardState = EMPTY_HARD_STATE;
  /** Newest (index, then term) first, at most SNAPSHOTS_RETAINED. */
  snapshots: Snapshot[] = [];
  /** The highest term any entry, snapshot or hard state has used. */
  term = 0;
  /** First indexes of persisted batches: likely segment boundaries, to aim overwrites at. */
  readonly batchStarts: number[] = [];

  get snapshotIndex(): number {
    return this.snapshots[0]?.meta.index ?? 0;
  }

  termAt(index: number): number | undefined {
    if (index === this.snapshotIndex) return this.snapshots[0]?.meta.term;
    return this.entries.get(index)?.term;
  }

  /** entries from `first` on replace the stored suffix from `first` on. */
  append(written: readonly Entry[]): void {
    const first = written[0];
    if (first === undefined) return;
    for (let index = first.index; index <= this.lastIndex; index++) this.entries.delete(index);
    for (const e of written) this.entries.set(e.index, e);
    this.lastIndex = (written.at(-1) as Entry).index;
    this.batchStarts.push(first.index);
  }

  addSnapshot(added: Snapshot): void {
    const others = this.snapshots.filter((s) => s.meta.index !== added.meta.index || s.meta.term !== added.meta.term);
    others.push(added);
    others.sort((a, b) => b.meta.index - a.meta.index || b.meta.term - a.meta.term);
    this.snapshots = others.slice(0, SNAPSHOTS_RETAINED);
  }

  compact(compactIndex: number): void {
    for (let index = this.logStartIndex; index <= compactIndex; index++) this.entries.delete(index);
    this.logStartIndex = Math.max(this.logStartIndex, compactIndex + 1);
  }

  install(installed: Snapshot, after: readonly Entry[]): void {
    this.addSnapshot(installed);
    this.entries.clear();
    this.logStartIndex = installed.meta.index + 1;
    this.lastIndex = installed.meta.index;
    this.append(after);
  }

  /** What load() must return. */
  expected(): InitialState {
    const newest = this.snapshots[0] ?? null;
    const snapshotIndex = newest?.meta.index ?? 0;
    const loaded: Entry[] = [];
    for (let index = snapshotIndex + 1; index <= this.lastIndex; index++) loaded.push(this.entries.get(index) as Entry);
    const lastIndex = Math.max(snapshotIndex, this.lastIndex);
    const commit = Math.max(snapshotIndex, Math.min(this.hardState.commit, lastIndex));
    return { hardState: { ...this.hardState, commit }, snapshot: newest, entries: loaded };
  }
}

/** One seed's run: the model, the storage under test and the PRNG that drives both. */
class Run {
  readonly model = new Model();
  readonly prng: Prng;
  readonly dataDir: string;
  readonly segmentBytesTarget: number;
  /** Large values (hundreds of KB) only where the real segment size is in use. */
  readonly largeValues: boolean;
  storage: LevelStorage | null = null;
  startedFromFormat1 = false;
  /** The last index of the format 1 log the seed started from. */
  format1LastIndex = 0;
  /** A reopen found format 1 records followed by segments (checked only until it does). */
  sawMixedFormats = false;
  /** What each step did, for the failure message. */
  readonly trace: string[] = [];
  /** Every sequence here is consistent: a warning (a passed-over snapshot, a finished install) is a bug. */
  readonly #failOnWarning: StorageLogger = {
    warn: (fields, message) => {
      throw new Error(`unexpected storage warning: ${message} ${JSON.stringify(fields)}`);
    },
  };

  constructor(seed: number, dataDir: string) {
    this.prng = new Prng(seed);
    this.dataDir = dataDir;
    this.segmentBytesTarget = this.prng.pick(SEGMENT_BYTES_TARGETS);
    this.largeValues = this.segmentBytesTarget === SEGMENT_BYTES_TARGET;
  }

  async open(): Promise<void> {
    const storage = new LevelStorage({
      dataDir: this.dataDir,
      snapshotsRetained: SNAPSHOTS_RETAINED,
      logger: this.#failOnWarning,
      segmentBytesTarget: this.segmentBytesTarget,
    });
    this.storage = storage;
    const state = await storage.load();
    const difference = differenceOf(state, this.model.expected());
    if (difference !== null) throw new Error(`load() differs from the model: ${difference}`);
  }

  async reopen(): Promise<void> {
    await this.storage?.close();
    if (this.startedFromFormat1 && !this.sawMixedFormats) {
      const ranges = await storedRecordRanges(this.dataDir);
      const format1 = ranges.some(([first]) => first <= this.format1LastIndex);
      this.sawMixedFormats = format1 && ranges.some(([first]) => first > this.format1LastIndex);
    }
    await this.open();
  }

  get opened(): LevelStorage {
    if (this.storage === null) throw new Error('not open');
    return this.storage;
  }

  entry(index: number, term: number): Entry {
    const prng = this.prng;
    let bytes = prng.chance(0.3) ? prng.between(0, 12) : prng.between(12, 300);
    if (this.largeValues && prng.chance(0.04)) bytes = prng.between(200_000, 700_000);
    else if (prng.chance(0.05)) bytes = prng.between(1, Math.min(3 * this.segmentBytesTarget, 100_000));
    // The data names its entry and term, repeated, so a mix-up shows in the comparison.
    const data = new Uint8Array(Buffer.alloc(bytes, `${index}@${term}#`));
    return { index, term, type: prng.pick(ENTRY_TYPES), data };
  }

  entries(first: number, count: number, term: number): Entry[] {
    const made: Entry[] = [];
    for (let k = 0; k < count; k++) made.push(this.entry(first + k, term));
    return made;
  }

  batchCount(): number {
    const prng = this.prng;
    if (prng.chance(0.1)) return prng.between(10, 40);
    return prng.between(1, 6);
  }

  hardStateFor(term: number): HardState {
    const vote = this.prng.pick([null, 's1', 's2', 's3']);
    return { term, vote, commit: this.prng.between(0, this.model.lastIndex + 5) };
  }

  async persist(request: PersistRequest): Promise<void> {
    await this.opened.persist(request);
    if (request.hardState !== null) this.model.hardState = request.hardState;
  }

  /** The leader (or a follower) appends after the last entry. */
  async append(): Promise<void> {
    const { prng, model } = this;
    const empty = prng.chance(0.15);
    // An entry of a new term comes with the hard state of that term, in the same batch.
    const newTerm = model.term === 0 || prng.chance(0.1);
    const term = newTerm ? model.term + 1 : model.term;
    const written = empty ? [] : this.entries(model.lastIndex + 1, this.batchCount(), term);
    const hard = newTerm ? this.hardStateFor(term) : prng.chance(0.4) ? this.hardStateFor(model.hardState.term) : null;
    const sync = prng.chance(0.4);
    this.trace.push(`append ${written[0]?.index ?? '-'}..${written.at(-1)?.index ?? '-'} term ${term}${hard === null ? '' : ` hs ${hard.term}/${hard.commit}`}${sync ? '' : ' nosync'}`);
    await this.persist({ hardState: hard, entries: written, snapshot: null, sync });
    model.term = Math.max(model.term, hard?.term ?? 0);
    model.append(written);
  }

  /** A new leader's entries replace a conflicting suffix from a random index on. */
  async overwrite(): Promise<void> {
    const { prng, model } = this;
    // Committed entries are never replaced, and a snapshot holds only committed ones.
    const lowest = Math.max(model.logStartIndex, model.snapshotIndex + 1);
    if (lowest > model.lastIndex) return this.append();
    const boundaries = model.batchStarts.filter((index) => index >= lowest && index <= model.lastIndex);
    const roll = prng.nextInt(4);
    let from: number;
    if (roll === 0) from = lowest;
    else if (roll === 1 && boundaries.length > 0) from = prng.pick(boundaries);
    else if (roll === 2 && boundaries.length > 0) from = Math.min(model.lastIndex, prng.pick(boundaries) + 1);
    else from = prng.between(lowest, model.lastIndex);
    const term = model.term + 1;
    const written = this.entries(from, prng.between(1, 8), term);
    const hard = this.hardStateFor(term);
    const sync = prng.chance(0.5);
    this.trace.push(`overwrite from ${from} (log ${model.logStartIndex}..${model.lastIndex}) with ${written.length} of term ${term}${sync ? '' : ' nosync'}`);
    await this.persist({ hardState: hard, entries: written, snapshot: null, sync });
    model.term = term;
    model.append(written);
  }

  /** The state machine snapshots an applied index and compacts some of the log. */
  async saveSnapshot(): Promise<void> {
    const { prng, model } = this;
    const lowest = Math.max(model.snapshotIndex, 1);
    if (lowest > model.lastIndex) return this.append();
    const index = prng.between(lowest, model.lastIndex);
    const term = model.termAt(index);
    if (term === undefined) throw new Error(`model: no term at ${index}`);
    const roll = prng.nextInt(3);
    const compactIndex = roll === 0 ? index : roll === 1 ? prng.between(Math.min(index, model.logStartIndex - 1), index) : prng.between(0, index);
    this.trace.push(`saveSnapshot ${index}@${term} compact ${compactIndex} (log ${model.logStartIndex}..${model.lastIndex})`);
    const saved = snapshot(index, term);
    await this.opened.saveSnapshot(saved, compactIndex);
    model.addSnapshot(saved);
    model.compact(compactIndex);
  }

  /** A snapshot from the leader replaces the whole log; entries after it may come along. */
  async installSnapshot(): Promise<void> {
    const { prng, model } = this;
    const lowest = Math.max(model.snapshotIndex + 1, model.logStartIndex - 1, 1);
    const index = prng.between(Math.max(lowest, model.lastIndex - 6), model.lastIndex + 12);
    const term = prng.chance(0.5) ? model.term + 1 : Math.max(model.term, 1);
    const installed = snapshot(index, term);
    const after = prng.chance(0.5) ? this.entries(index + 1, this.batchCount(), term) : [];
    const hard = prng.chance(0.8) || term > model.hardState.term ? { ...this.hardStateFor(term), commit: index } : null;
    this.trace.push(`installSnapshot ${index}@${term} with ${after.length} after (log ${model.logStartIndex}..${model.lastIndex})`);
    await this.persist({ hardState: hard, entries: after, snapshot: installed, sync: true });
    model.term = Math.max(model.term, term);
    model.install(installed, after);
  }

  async step(): Promise<void> {
    const roll = this.prng.nextInt(100);
    if (roll < 48) return this.append();
    if (roll < 70) return this.overwrite();
    if (roll < 83) return this.saveSnapshot();
    if (roll < 90) return this.installSnapshot();
    this.trace.push('reopen');
    return this.reopen();
  }

  /** Some seeds start from a log an older release wrote: format 1, maybe compacted. */
  async maybeStartFromFormat1(): Promise<void> {
    const { prng, model } = this;
    if (!prng.chance(0.2)) return;
    const compacted = prng.chance(0.5);
    const logStartIndex = compacted ? prng.between(2, 12) : 1;
    const count = prng.between(compacted ? 0 : 1, 25);
    const written: Entry[] = [];
    let term = compacted ? prng.between(1, 3) : 1;
    if (compacted) {
      const older = snapshot(logStartIndex - 1, term);
      const store = new SnapshotStore(join(this.dataDir, 'raft', 'snapshots'), SNAPSHOTS_RETAINED);
      await store.init();
      await store.write(older);
      model.addSnapshot(older);
      model.logStartIndex = logStartIndex;
      model.lastIndex = logStartIndex - 1;
    }
    for (let k = 0; k < count; k++) {
      if (prng.chance(0.15)) term++;
      written.push(this.entry(logStartIndex + k, term));
    }
    const hard: HardState = { term, vote: 's1', commit: prng.between(0, logStartIndex + count) };
    await writeFormat1Log(this.dataDir, written, hard, logStartIndex);
    for (const e of written) model.entries.set(e.index, e);
    for (const e of written) model.batchStarts.push(e.index);
    model.lastIndex = logStartIndex + count - 1;
    model.hardState = hard;
    model.term = term;
    this.startedFromFormat1 = true;
    this.format1LastIndex = model.lastIndex;
    this.trace.push(`format 1 log ${logStartIndex}..${model.lastIndex}${compacted ? ` after snapshot ${logStartIndex - 1}` : ''}`);
  }
}

/** The first difference between what load() returned and the model's expectation, or null. */
function differenceOf(actual: InitialState, expected: InitialState): string | null {
  const hard = (h: HardState): string => `${h.term}/${String(h.vote)}/${h.commit}`;
  if (hard(actual.hardState) !== hard(expected.hardState)) return `hard state ${hard(actual.hardState)}, want ${hard(expected.hardState)}`;
  const snap = (s: Snapshot | null): string =>
    s === null ? 'none' : `${s.meta.index}@${s.meta.term} ${JSON.stringify(s.meta.configuration)} ${Buffer.from(s.data).toString('hex')}`;
  if (snap(actual.snapshot) !== snap(expected.snapshot)) return `snapshot ${snap(actual.snapshot)}, want ${snap(expected.snapshot)}`;
  const range = (list: readonly Entry[]): string => `${list[0]?.index ?? '-'}..${list.at(-1)?.index ?? '-'} (${list.length})`;
  if (actual.entries.length !== expected.entries.length) return `entries ${range(actual.entries)}, want ${range(expected.entries)}`;
  for (let k = 0; k < expected.entries.length; k++) {
    const a = actual.entries[k] as Entry;
    const e = expected.entries[k] as Entry;
    if (a.index !== e.index || a.term !== e.term || a.type !== e.type || !Buffer.from(a.data).equals(Buffer.from(e.data))) {
      return `entry ${e.index}: got ${a.index}@${a.term} ${a.type} (${a.data.length} bytes), want ${e.index}@${e.term} ${e.type} (${e.data.length} bytes)`;
    }
  }
  return null;
}

/** What the seeds' logs looked like on disk, to show the runs reach the cases that matter. */
interface Coverage {
  seeds: number;
  /** A record holding more than one entry. */
  multiEntryRecords: number;
  /** The first record starts before the log start: a compaction inside it. */
  straddlingFirstRecords: number;
  /** A reopen loaded format 1 records followed by segments. */
  mixedFormatLogs: number;
}

/** Counts what the data dir of a finished seed holds (closed: reads the raw LevelDB). */
async function addCoverage(coverage: Coverage, run: Run): Promise<void> {
  const ranges = await storedRecordRanges(run.dataDir);
  coverage.seeds++;
  if (ranges.some(([first, last]) => last > first)) coverage.multiEntryRecords++;
  if ((ranges[0]?.[0] ?? Infinity) < run.model.logStartIndex) coverage.straddlingFirstRecords++;
  if (run.sawMixedFormats) coverage.mixedFormatLogs++;
}

/**
 * Where the seeds' data dirs go: tmpfs when there is one. This test checks what load() returns
 * after each sequence, not what survives a crash (level-storage-crash.test.ts and the Tier 2
 * durability tests do that on a real disk), and on a disk the fsyncs of thousands of LevelDB
 * opens and synced batches take minutes. Removed at the end unless a seed failed.
 */
async function scratchDirectory(t: Test): Promise<string> {
  if (!existsSync(TMPFS_DIRECTORY)) return t.testdir();
  const root = await mkdtemp(join(TMPFS_DIRECTORY, 'conclave-storage-model-'));
  t.teardown(async () => {
    if (t.passing()) await rm(root, { recursive: true, force: true });
  });
  return root;
}

async function runSeed(seed: number, dataDir: string): Promise<{ run: Run; error: unknown }> {
  const run = new Run(seed, dataDir);
  try {
    await run.maybeStartFromFormat1();
    await run.open();
    for (let step = 0; step < STEPS_PER_SEED; step++) {
      await run.step();
    }
    run.trace.push('final reopen');
    await run.reopen();
    return { run, error: null };
  } catch (error) {
    return { run, error };
  } finally {
    await run.storage?.close();
  }
}

t.test('LevelStorage loads what a plain model of the log holds, after random operations and reopens', async (t) => {
  const seeds = process.env['SEED'] !== undefined ? [Number(process.env['SEED'])] : Array.from({ length: SEEDS_COUNT }, (_, k) => 7001 + k);
  const root = await scratchDirectory(t);
  const failures: string[] = [];
  const coverage: Coverage = { seeds: 0, multiEntryRecords: 0, straddlingFirstRecords: 0, mixedFormatLogs: 0 };
  // Seeds are independent and mostly wait for fsync (a LevelDB open alone takes 10-25 ms here),
  // so a few run at once; each seed's own sequence stays sequential and replays exactly.
  const pending = [...seeds];
  const worker = async (): Promise<void> => {
    for (let seed = pending.shift(); seed !== undefined && failures.length < FAILURES_REPORTED_MAX; seed = pending.shift()) {
      const dataDir = join(root, `seed-${seed}`);
      await mkdir(dataDir, { recursive: true });
      const { run, error } = await runSeed(seed, dataDir);
      if (error === null) {
        await addCoverage(coverage, run);
        await rm(dataDir, { recursive: true, force: true });
        continue;
      }
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failures.push(`seed=${seed} (segment target ${run.segmentBytesTarget} bytes): ${message}\n  last steps: ${run.trace.slice(-8).join('; ')}\n  replay with SEED=${seed}`);
    }
  };
  await Promise.all(Array.from({ length: SEEDS_CONCURRENT }, worker));
  for (const failure of failures) t.fail(`${failure}\n  data dirs kept under ${root}`);
  t.equal(failures.length, 0, `${seeds.length} seeds × ${STEPS_PER_SEED} steps`);
  t.comment(`seeds whose logs reached each case: ${JSON.stringify(coverage)}`);
  if (seeds.length >= 100) {
    t.ok(coverage.multiEntryRecords > coverage.seeds / 2, 'most final logs hold multi-entry segments');
    t.ok(coverage.straddlingFirstRecords > 0, 'some final logs start inside their first segment');
    t.ok(coverage.mixedFormatLogs > 0, 'some reopens load format 1 records followed by segments');
  }
});
