import { join } from 'node:path';
import { Level } from 'level';
import { assert, AssertionError } from '../../lib/assert.js';
import { CorruptionError } from '../../lib/errors.js';
import { EMPTY_HARD_STATE } from '../core/types.js';
import type { Entry, HardState, InitialState, Snapshot } from '../core/types.js';
import { SNAPSHOTS_RETAINED_DEFAULT } from './limits.js';
import type { PersistRequest, RaftStorage } from './raft-storage.js';
import {
  decodeHardState,
  decodeLogRecord,
  decodeMeta,
  encodeSegment,
  encodeHardState,
  encodeMeta,
  ENTRY_KEYS_END,
  ENTRY_KEYS_START,
  entryKey,
  HARD_STATE_KEY,
  indexOfEntryKey,
  LOG_FORMAT_VERSION,
  META_KEY,
  SEGMENT_BYTES_TARGET,
  splitSegments,
} from './record-codec.js';
import { asCorruptionError, CorruptionMarker, LogWrittenSentinel } from './corruption-guards.js';
import { SnapshotStore, snapshotFileName, syncDirectory } from './snapshot-store.js';
import type { SnapshotFileName } from './snapshot-store.js';
import { assertPersistRequest, assertSaveSnapshot, clampCommit } from './storage-checks.js';
import type { StoredLogBounds } from './storage-checks.js';

/** Where storage reports what an operator should know but that does not stop start-up (pino-compatible). */
export interface StorageLogger {
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Options of LevelStorage. */
export interface LevelStorageOptions {
  /** The agent's data directory; storage uses `<dataDir>/raft/log` and `<dataDir>/raft/snapshots`. */
  readonly dataDir: string;
  /** Snapshot files kept (newest first). Default SNAPSHOTS_RETAINED_DEFAULT (2, as Consul). */
  readonly snapshotsRetained?: number;
  /** Defaults to process warnings. */
  readonly logger?: StorageLogger;
  /**
   * The size segments are split at. Default SEGMENT_BYTES_TARGET; tests set it small so that
   * ordinary batches split into many segments.
   */
  readonly segmentBytesTarget?: number;
}

type LevelBatchOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: Uint8Array };

/** What the log held at load, before a snapshot is chosen. */
interface LoadedLog {
  readonly hardState: HardState;
  readonly logStartIndex: number;
  /** False for a new database: the first batch writes the metadata record. */
  readonly metaStored: boolean;
  /** Every stored entry, contiguous from logStartIndex. */
  readonly entries: readonly Entry[];
  /** The key index of every stored record (segment starts), ascending. */
  readonly segments: number[];
}

/** A snapshot to start from (null: none, the log starts at index 1). */
interface ChosenSnapshot {
  readonly snapshot: Snapshot | null;
  /** Newer snapshot files that failed verification and were passed over. */
  readonly skipped: readonly { readonly file: SnapshotFileName; readonly error: CorruptionError }[];
}

const defaultLogger: StorageLogger = {
  warn: (fields, message) => process.emitWarning(`${message} ${JSON.stringify(fields)}`, 'RaftStorageWarning'),
};

/**
 * Raft storage on disk: hard state and log in LevelDB (`<dataDir>/raft/log`, layout in
 * record-codec.ts), snapshots as files (`<dataDir>/raft/snapshots`, layout in snapshot-store.ts).
 *
 * One persist() is one LevelDB batch, synced when asked: hard state, new entries and the
 * deletion of the replaced suffix land together or not at all (hashicorp/raft #661 saved term
 * and vote in two writes). That one batch per driver turn is the group commit.
 *
 * Invariant between calls: the stored records (segments, `#segments` holds their first indexes)
 * hold exactly the entries logStartIndex..lastIndex, except that the first segment may also
 * hold entries before logStartIndex that a compaction left inside it.
 * Call load() first; calls never overlap (the driver runs one turn at a time).
 */
export class LevelStorage implements RaftStorage {
  readonly #dataDir: string;
  readonly #logDirectory: string;
  readonly #db: Level<Uint8Array, Uint8Array>;
  readonly #marker: CorruptionMarker;
  readonly #sentinel: LogWrittenSentinel;
  readonly #snapshots: SnapshotStore;
  readonly #logger: StorageLogger;
  readonly #segmentBytesTarget: number;
  #bounds: StoredLogBounds = { logStartIndex: 1, lastIndex: 0 };
  /** The first index of every stored segment record, ascending. */
  #segments: number[] = [];
  /** The index of the newest snapshot (0: none), for the callers' assertions. */
  #snapshotIndex = 0;
  #metaStored = false;
  /** A sync:false batch went out since the last synced one. */
  #hasUnsyncedWrites = false;
  #loaded = false;
  #operationRunning = false;
  /** The file name of a snapshot stageSnapshot() wrote that saveSnapshot() has not taken yet. */
  #staged: string | null = null;
  /** The first write failure: the disk can no longer be trusted, so every later call rejects. */
  #failure: unknown = null;

  constructor(options: LevelStorageOptions) {
    assert(options.dataDir.length > 0, 'LevelStorage: dataDir must not be empty');
    this.#dataDir = options.dataDir;
    this.#logDirectory = join(options.dataDir, 'raft', 'log');
    this.#marker = new CorruptionMarker(join(options.dataDir, 'raft'));
    this.#sentinel = new LogWrittenSentinel(join(options.dataDir, 'raft'));
    this.#db = new Level<Uint8Array, Uint8Array>(this.#logDirectory, {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    this.#snapshots = new SnapshotStore(
      join(options.dataDir, 'raft', 'snapshots'),
      options.snapshotsRetained ?? SNAPSHOTS_RETAINED_DEFAULT,
    );
    this.#logger = options.logger ?? defaultLogger;
    this.#segmentBytesTarget = options.segmentBytesTarget ?? SEGMENT_BYTES_TARGET;
    assert(Number.isSafeInteger(this.#segmentBytesTarget), 'LevelStorage: segmentBytesTarget must be an integer');
    assert(this.#segmentBytesTarget >= 1, 'LevelStorage: segmentBytesTarget must be positive');
    assert(this.#segmentBytesTarget <= SEGMENT_BYTES_TARGET, 'LevelStorage: segmentBytesTarget must not exceed SEGMENT_BYTES_TARGET');
  }

  /**
   * Opens the database and loads everything; CorruptionError names what is wrong and where.
   * Call close() afterwards even when it rejects.
   */
  async load(): Promise<InitialState> {
    assert(!this.#loaded, 'LevelStorage: load() is called once');
    await this.#marker.refuseIfMarked();
    try {
      await this.#db.open();
    } catch (error) {
      throw asCorruptionError(error, this.#logDirectory);
    }
    await this.#marker.checkLevelDbRecovery(this.#logDirectory);
    await this.#snapshots.init();
    // Make the directories themselves durable: LevelDB fsyncs inside raft/log, not above it.
    await syncDirectory(join(this.#dataDir, 'raft'));
    await syncDirectory(this.#dataDir);
    let log: LoadedLog;
    try {
      log = await this.#readLog();
    } catch (error) {
      throw asCorruptionError(error, this.#logDirectory);
    }
    await this.#sentinel.check(log.metaStored, this.#logDirectory);
    const lastStoredIndex = log.logStartIndex + log.entries.length - 1;
    const chosen = await this.#chooseSnapshot(log, lastStoredIndex);
    for (const { file, error } of chosen.skipped) {
      this.#logger.warn({ file: file.fileName, error: error.message }, 'raft storage: passed over a corrupt snapshot');
    }
    const snapshotIndex = chosen.snapshot?.meta.index ?? 0;
    this.#bounds = { logStartIndex: log.logStartIndex, lastIndex: lastStoredIndex };
    this.#segments = log.segments;
    this.#snapshotIndex = snapshotIndex;
    this.#metaStored = log.metaStored;
    let entries = log.entries.filter((entry) => entry.index > snapshotIndex);
    if (chosen.snapshot !== null && !logContinuesSnapshot(log, chosen.snapshot)) {
      await this.#finishInterruptedInstall(chosen.snapshot);
      entries = [];
    }
    const lastIndex = Math.max(snapshotIndex, entries.at(-1)?.index ?? 0);
    const hardState = clampCommit(log.hardState, snapshotIndex, lastIndex);
    this.#loaded = true;
    return { hardState, snapshot: chosen.snapshot, entries };
  }

  /** Makes one Ready durable in one LevelDB batch (after the snapshot file, if one came). */
  async persist(request: PersistRequest): Promise<void> {
    this.#beginOperation();
    try {
      assertPersistRequest(request, this.#bounds, this.#snapshotIndex);
      if (request.snapshot !== null) await this.#installSnapshot(request, request.snapshot);
      else await this.#append(request);
    } catch (error) {
      this.#recordFailure(error);
      throw error;
    } finally {
      this.#operationRunning = false;
    }
  }

  /**
   * Writes a snapshot's file durably ahead of saveSnapshot(), outside the Raft turn (~120 ms at
   * 1M keys). It touches only the snapshot directory, so it may overlap persist(). A crash
   * before saveSnapshot() leaves a file that the log still continues (nothing is compacted yet):
   * load() may start from it, as from a crash inside saveSnapshot().
   */
  async stageSnapshot(snapshot: Snapshot): Promise<void> {
    this.#assertWritable();
    try {
      await this.#snapshots.write(snapshot);
    } catch (error) {
      this.#recordFailure(error);
      throw error;
    }
    this.#staged = snapshotFileName(snapshot.meta);
  }

  /** Writes the snapshot file durably (unless staged), then compacts the log through compactIndex in one synced batch. */
  async saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    this.#beginOperation();
    try {
      assertSaveSnapshot(snapshot, compactIndex, this.#bounds, this.#snapshotIndex);
      const staged = this.#staged === snapshotFileName(snapshot.meta);
      this.#staged = null;
      if (!staged) await this.#snapshots.write(snapshot);
      this.#snapshotIndex = snapshot.meta.index;
      const { logStartIndex, lastIndex } = this.#bounds;
      if (compactIndex >= logStartIndex) {
        // Whole segments at or below the compaction point go; one straddling it stays (its
        // early entries are skipped at load: they are before logStartIndex).
        const gone = this.#segments.filter((_, k) => this.#segmentEnd(k) <= compactIndex);
        const operations: LevelBatchOperation[] = gone.map((start) => ({ type: 'del', key: entryKey(start) }));
        operations.push(metaOperation({ logStartIndex: compactIndex + 1, lastIndex }));
        await this.#write(operations, true);
        this.#bounds = { logStartIndex: compactIndex + 1, lastIndex };
        this.#segments = this.#segments.slice(gone.length);
      }
      await this.#snapshots.prune();
    } catch (error) {
      this.#recordFailure(error);
      throw error;
    } finally {
      this.#operationRunning = false;
    }
  }

  /** Closes the database. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }

  /** A disk failure poisons the storage (etcd: a failing Storage makes the node inoperable). */
  #recordFailure(error: unknown): void {
    if (error instanceof AssertionError) return; // thrown before any write: the disk is fine
    this.#failure ??= error;
  }

  #beginOperation(): void {
    assert(!this.#operationRunning, 'LevelStorage: calls must not overlap');
    this.#assertWritable();
    this.#operationRunning = true;
  }

  /** Loaded, and no write has failed (a failed disk refuses every later write). */
  #assertWritable(): void {
    assert(this.#loaded, 'LevelStorage: load() must come first');
    if (this.#failure !== null) throw new Error('raft storage failed earlier; refusing further writes', { cause: this.#failure });
  }

  async #append(request: PersistRequest): Promise<void> {
    const operations: LevelBatchOperation[] = [];
    const first = request.entries[0];
    const last = request.entries.at(-1);
    const bounds: StoredLogBounds = { logStartIndex: this.#bounds.logStartIndex, lastIndex: last?.index ?? this.#bounds.lastIndex };
    // The segments that stay, when a conflicting suffix is cut (null: all of them stay).
    let kept: number[] | null = null;
    let added: number[] = [];
    if (first !== undefined) {
      // Raft §5.3: entries from `first` on are replaced (a conflicting suffix is dropped).
      if (first.index <= this.#bounds.lastIndex) kept = await this.#truncateFrom(first.index, operations);
      added = this.#putSegments(request.entries, operations);
    }
    // The first batch stores a hard state too, so metadata without a hard state means loss.
    const hardState = request.hardState ?? (this.#metaStored ? null : EMPTY_HARD_STATE);
    if (hardState !== null) operations.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hardState) });
    // Metadata whenever the stored range changes; and when nothing is new but an fsync was asked
    // for, as something to sync: a synced batch also makes every earlier one durable.
    const flushOnly = operations.length === 0 && request.sync && this.#hasUnsyncedWrites;
    if (first !== undefined || !this.#metaStored || flushOnly) operations.push(metaOperation(bounds));
    if (operations.length === 0) return;
    await this.#write(operations, request.sync);
    this.#bounds = bounds;
    // In place on the common path: copying every segment start per batch would be quadratic.
    if (kept !== null) this.#segments = kept;
    for (const start of added) this.#segments.push(start);
    assert(this.#segments.length === 0 || (this.#segments.at(-1) as number) <= bounds.lastIndex, 'LevelStorage: segments within the log');
  }

  /** Adds a put of each segment of `entries` to `operations`; returns the segments' first indexes. */
  #putSegments(entries: readonly Entry[], operations: LevelBatchOperation[]): number[] {
    const starts: number[] = [];
    for (const chunk of splitSegments(entries, this.#segmentBytesTarget)) {
      const start = (chunk[0] as Entry).index;
      operations.push({ type: 'put', key: entryKey(start), value: encodeSegment(chunk) });
      starts.push(start);
    }
    return starts;
  }

  /** The last index the k-th segment holds. */
  #segmentEnd(k: number): number {
    const next = this.#segments[k + 1];
    return next === undefined ? this.#bounds.lastIndex : next - 1;
  }

  /**
   * Adds to `operations` what removes every stored entry from `index` on, and returns the
   * segment starts that remain. Later segments are deleted. A segment that straddles `index` is
   * read back (this happens only when a new leader overwrites uncommitted entries) and its
   * entries logStartIndex..index-1 are rewritten under the key logStartIndex or its own start,
   * whichever is later: entries before logStartIndex that a compaction left in it go now, and
   * if it keeps none, it goes whole (a record holding only compacted entries is refused at load).
   */
  async #truncateFrom(index: number, operations: LevelBatchOperation[]): Promise<number[]> {
    const { logStartIndex, lastIndex } = this.#bounds;
    assert(index >= logStartIndex, 'truncateFrom: never cuts into the compacted prefix');
    assert(index <= lastIndex, 'truncateFrom: cuts stored entries');
    let keptCount = this.#segments.findIndex((start) => start >= index);
    if (keptCount === -1) keptCount = this.#segments.length;
    for (const start of this.#segments.slice(keptCount)) operations.push({ type: 'del', key: entryKey(start) });
    const kept = this.#segments.slice(0, keptCount);
    const straddling = keptCount - 1;
    const start = kept[straddling];
    if (start === undefined || this.#segmentEnd(straddling) < index) return kept;
    const value = await this.#db.get(entryKey(start));
    if (value === undefined) throw new CorruptionError(`raft log: segment record ${start} vanished from ${this.#logDirectory}`);
    const stored = decodeLogRecord(value, start, LOG_FORMAT_VERSION);
    const end = this.#segmentEnd(straddling);
    if ((stored.at(-1) as Entry).index !== end) {
      throw new CorruptionError(`raft log: segment record ${start} in ${this.#logDirectory} ends at ${(stored.at(-1) as Entry).index}, not ${end}`);
    }
    const remaining = stored.filter((entry) => entry.index >= logStartIndex && entry.index < index);
    const newStart = Math.max(start, logStartIndex);
    if (newStart !== start || remaining.length === 0) operations.push({ type: 'del', key: entryKey(start) });
    kept.pop();
    if (remaining.length > 0) {
      assert((remaining[0] as Entry).index === newStart, 'truncateFrom: the rewritten segment starts at its key');
      operations.push({ type: 'put', key: entryKey(newStart), value: encodeSegment(remaining) });
      kept.push(newStart);
    }
    return kept;
  }

  /**
   * A snapshot from the leader replaces the whole log: its file first (durable), then one synced
   * batch that deletes every stored entry, moves the log start past the snapshot and writes the
   * entries and hard state of the same request. A crash between the two is finished by load().
   */
  async #installSnapshot(request: PersistRequest, snapshot: Snapshot): Promise<void> {
    await this.#snapshots.write(snapshot);
    this.#snapshotIndex = snapshot.meta.index;
    const operations: LevelBatchOperation[] = this.#segments.map((start) => ({ type: 'del', key: entryKey(start) }));
    const lastIndex = request.entries.at(-1)?.index ?? snapshot.meta.index;
    const bounds: StoredLogBounds = { logStartIndex: snapshot.meta.index + 1, lastIndex };
    operations.push(metaOperation(bounds));
    const segments = this.#putSegments(request.entries, operations);
    const hardState = request.hardState ?? (this.#metaStored ? null : EMPTY_HARD_STATE);
    if (hardState !== null) operations.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardState(hardState) });
    await this.#write(operations, true);
    this.#bounds = bounds;
    this.#segments = segments;
    await this.#snapshots.prune();
  }

  async #write(operations: LevelBatchOperation[], sync: boolean): Promise<void> {
    assert(operations.length > 0, 'LevelStorage: an empty batch is never written');
    await this.#db.batch(operations, { sync });
    this.#metaStored = true;
    this.#hasUnsyncedWrites = !sync;
    await this.#sentinel.markWritten();
  }

  /** Reads metadata, hard state and every entry, checking each record and the log's shape. */
  async #readLog(): Promise<LoadedLog> {
    await this.#assertOnlyKnownKeys();
    const metaValue = await this.#db.get(META_KEY);
    const hardStateValue = await this.#db.get(HARD_STATE_KEY);
    const meta = metaValue === undefined ? null : decodeMeta(metaValue);
    const hardState = hardStateValue === undefined ? null : decodeHardState(hardStateValue);
    const logStartIndex = meta?.logStartIndex ?? 1;
    const { entries, segments } = await this.#readEntries(logStartIndex, meta?.formatVersion ?? LOG_FORMAT_VERSION);
    const lastIndex = logStartIndex + entries.length - 1;
    const where = `raft log ${this.#logDirectory}`;
    if (meta === null) {
      // The first batch writes metadata, hard state and entries together.
      if (hardState !== null || entries.length > 0) throw new CorruptionError(`${where}: holds data but no metadata record`);
      return { hardState: EMPTY_HARD_STATE, logStartIndex, metaStored: false, entries, segments };
    }
    if (hardState === null) throw new CorruptionError(`${where}: the metadata record exists but the hard state is missing`);
    if (meta.lastIndex !== lastIndex) {
      const missing = lastIndex < meta.lastIndex ? ` (entries ${lastIndex + 1}..${meta.lastIndex} are missing)` : '';
      throw new CorruptionError(`${where}: the log ends at index ${lastIndex}, but the metadata says ${meta.lastIndex}${missing}`);
    }
    const lastTerm = entries.at(-1)?.term ?? 0;
    if (hardState.term < lastTerm) {
      // Term and entries are written in one batch, so this means a lost hard-state write, after
      // which this server could vote twice in one term (hashicorp/raft #661).
      throw new CorruptionError(`${where}: hard state term ${hardState.term} is behind term ${lastTerm} of the last entry ${lastIndex}`);
    }
    return { hardState, logStartIndex, metaStored: true, entries, segments };
  }

  /**
   * Every stored entry, checked: CRC, decoding, record key = its first index, no gap from
   * logStartIndex, terms rising. Only the first record may hold entries before logStartIndex
   * (a compaction inside it); they are skipped.
   */
  async #readEntries(logStartIndex: number, formatVersion: number): Promise<{ entries: Entry[]; segments: number[] }> {
    const entries: Entry[] = [];
    const segments: number[] = [];
    for await (const [key, value] of this.#db.iterator({ gte: ENTRY_KEYS_START, lt: ENTRY_KEYS_END })) {
      const index = indexOfEntryKey(key);
      const expected = logStartIndex + entries.length;
      const records = decodeLogRecord(value, index, formatVersion);
      const end = (records.at(-1) as Entry).index;
      const straddles = segments.length === 0 && index < logStartIndex && end >= logStartIndex;
      if (index !== expected && !straddles) throw logShapeError(index, expected, logStartIndex);
      for (const entry of records) {
        if (entry.index < logStartIndex) continue;
        const previous = entries.at(-1);
        if (previous !== undefined && entry.term < previous.term) {
          throw new CorruptionError(`raft log: entry ${entry.index} has term ${entry.term}, below term ${previous.term} of entry ${previous.index}`);
        }
        entries.push(entry);
      }
      segments.push(index);
    }
    return { entries, segments };
  }

  /**
   * Refuses keys this format never writes. A flipped bit in a key's first byte moves an entry
   * out of the entry range, where it would otherwise vanish without a trace.
   */
  async #assertOnlyKnownKeys(): Promise<void> {
    const isKnown = (key: Uint8Array): boolean => sameBytes(key, HARD_STATE_KEY) || sameBytes(key, META_KEY);
    for (const range of [{ lt: ENTRY_KEYS_START }, { gte: ENTRY_KEYS_END }]) {
      for await (const key of this.#db.keys(range)) {
        if (isKnown(key)) continue;
        throw new CorruptionError(`raft log: unknown key 0x${Buffer.from(key).toString('hex')} in ${this.#logDirectory}`);
      }
    }
  }

  /**
   * The newest snapshot whose file verifies. If newer files are corrupt, an older snapshot is
   * used only when the log still holds everything from it on: the log starts at or before its
   * next index and reaches the index of every corrupt newer file. Otherwise the log may already
   * be compacted past the older snapshot (or the newer one came from the leader and replaced the
   * log), and starting from it would silently lose committed and acknowledged entries: we refuse.
   */
  async #chooseSnapshot(log: LoadedLog, lastStoredIndex: number): Promise<ChosenSnapshot> {
    const skipped: { file: SnapshotFileName; error: CorruptionError }[] = [];
    for (const file of await this.#snapshots.list()) {
      let snapshot: Snapshot;
      try {
        snapshot = await this.#snapshots.read(file);
      } catch (error) {
        if (!(error instanceof CorruptionError)) throw error;
        skipped.push({ file, error });
        continue;
      }
      if (skipped.length > 0) assertLogReplacesSkipped(log, lastStoredIndex, snapshot, skipped);
      else assertLogFollowsSnapshot(log, snapshot);
      return { snapshot, skipped };
    }
    if (log.logStartIndex > 1) {
      const newest = skipped[0];
      const reason = newest === undefined ? `there is no snapshot in ${this.#snapshots.directory}` : newest.error.message;
      throw new CorruptionError(`raft log: entries before index ${log.logStartIndex} were compacted, but ${reason}`);
    }
    if (skipped.length > 0) assertLogReplacesSkipped(log, lastStoredIndex, null, skipped);
    return { snapshot: null, skipped };
  }

  /**
   * The newest snapshot verifies but the log does not continue it: a snapshot from the leader
   * whose file was renamed into place before a crash stopped the batch that replaces the log
   * (persist writes the file first). Raft's InstallSnapshot rule applies: the snapshot holds
   * committed state, so a log that does not match it at its index is discarded. The batch the
   * crash stopped is written now, synced, so the next load sees a consistent log.
   */
  async #finishInterruptedInstall(snapshot: Snapshot): Promise<void> {
    const { logStartIndex, lastIndex } = this.#bounds;
    this.#logger.warn(
      { snapshotIndex: snapshot.meta.index, snapshotTerm: snapshot.meta.term, logStartIndex, lastIndex },
      'raft storage: finishing a snapshot install that a crash interrupted; dropping the log it replaces',
    );
    const operations: LevelBatchOperation[] = this.#segments.map((start) => ({ type: 'del', key: entryKey(start) }));
    operations.push(metaOperation({ logStartIndex: snapshot.meta.index + 1, lastIndex: snapshot.meta.index }));
    await this.#write(operations, true);
    this.#bounds = { logStartIndex: snapshot.meta.index + 1, lastIndex: snapshot.meta.index };
    this.#segments = [];
  }
}

/** The batch operation that stores the metadata record for `bounds`. */
function metaOperation(bounds: StoredLogBounds): LevelBatchOperation {
  const meta = { formatVersion: LOG_FORMAT_VERSION, logStartIndex: bounds.logStartIndex, lastIndex: bounds.lastIndex };
  return { type: 'put', key: META_KEY, value: encodeMeta(meta) };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** The stored entry at `index`, if the log holds it. */
function entryAt(log: LoadedLog, index: number): Entry | undefined {
  return log.entries[index - log.logStartIndex];
}

/** True when the log holds the snapshot's last entry with its term, or starts right after it. */
function logContinuesSnapshot(log: LoadedLog, snapshot: Snapshot): boolean {
  if (log.logStartIndex === snapshot.meta.index + 1) return true;
  return entryAt(log, snapshot.meta.index)?.term === snapshot.meta.term;
}

/** The newest snapshot must leave no hole before the log: the log starts at most right after it. */
function assertLogFollowsSnapshot(log: LoadedLog, snapshot: Snapshot): void {
  if (log.logStartIndex <= snapshot.meta.index + 1) return;
  throw new CorruptionError(
    `raft log: gap after the snapshot: the log starts at index ${log.logStartIndex} but the newest snapshot ` +
      `(term ${snapshot.meta.term}) ends at index ${snapshot.meta.index}, ` +
      `so entries ${snapshot.meta.index + 1}..${log.logStartIndex - 1} are missing`,
  );
}

/** Refuses an older snapshot (or none) unless the log covers everything the corrupt newer files held. */
function assertLogReplacesSkipped(
  log: LoadedLog,
  lastStoredIndex: number,
  older: Snapshot | null,
  skipped: readonly { readonly file: SnapshotFileName; readonly error: CorruptionError }[],
): void {
  const olderIndex = older?.meta.index ?? 0;
  const newestSkippedIndex = Math.max(...skipped.map(({ file }) => file.index));
  const startsInTime = log.logStartIndex <= olderIndex + 1;
  const matches = older === null || log.logStartIndex === olderIndex + 1 || entryAt(log, olderIndex)?.term === older.meta.term;
  if (startsInTime && matches && lastStoredIndex >= newestSkippedIndex) return;
  const newest = skipped[0];
  assert(newest !== undefined);
  const olderName = older === null ? 'starting without a snapshot' : `the older snapshot at index ${olderIndex}`;
  throw new CorruptionError(
    `${newest.error.message}; refusing to start: ${olderName} cannot replace it, because the log ` +
      `(indexes ${log.logStartIndex}..${lastStoredIndex}) does not cover everything from there through index ${newestSkippedIndex}`,
    { cause: newest.error },
  );
}

/** A stored entry key that is not the next expected index: a gap, or entries the metadata says are compacted. */
function logShapeError(index: number, expected: number, logStartIndex: number): CorruptionError {
  if (expected === logStartIndex && index < logStartIndex) {
    return new CorruptionError(
      `raft log: entry ${index} is stored, but the log starts at index ${logStartIndex} (compacted entries left behind)`,
    );
  }
  if (index < expected) return new CorruptionError(`raft log: entry key ${index} out of order after entry ${expected - 1}`);
  if (expected === logStartIndex) {
    return new CorruptionError(
      `raft log: gap at the log start: the log starts at index ${logStartIndex} but the first stored entry is ${index}`,
    );
  }
  return new CorruptionError(`raft log: gap in the log: entry ${index} follows entry ${expected - 1} (missing ${expected}..${index - 1})`);
}
