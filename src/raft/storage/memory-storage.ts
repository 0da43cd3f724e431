import { assert } from '../../lib/assert.js';
import { EMPTY_HARD_STATE } from '../core/types.js';
import type { Entry, HardState, InitialState, Snapshot } from '../core/types.js';
import { SNAPSHOTS_RETAINED_DEFAULT, SNAPSHOTS_RETAINED_MAX } from './limits.js';
import type { PersistRequest, RaftStorage } from './raft-storage.js';
import { assertPersistRequest, assertSaveSnapshot, clampCommit } from './storage-checks.js';
import type { StoredLogBounds } from './storage-checks.js';

/** Options of MemoryStorage. */
export interface MemoryStorageOptions {
  /** Snapshots kept (newest first), as LevelStorage. Default SNAPSHOTS_RETAINED_DEFAULT. */
  readonly snapshotsRetained?: number;
}

/**
 * One write, as LevelStorage would issue one LevelDB batch. Applied in this order: delete entries
 * >= truncateFrom, move the log start (deleting entries below it), put entries, put hard state.
 */
interface Batch {
  readonly truncateFrom: number | null;
  readonly logStartIndex: number | null;
  readonly entries: readonly Entry[];
  readonly hardState: HardState | null;
}

/** The log as one disk image would hold it. Entries are shared, never mutated. */
interface LogImage {
  hardState: HardState | null;
  logStartIndex: number;
  lastIndex: number;
  readonly entries: Map<number, Entry>;
}

/**
 * The in-memory twin of LevelStorage for tests and the simulation: the same semantics, no codec
 * and no I/O, so the simulation stays fast and deterministic. Entries and snapshots are kept by
 * reference; callers treat them as immutable, as the core does.
 *
 * It models crashes as LevelDB behaves. Every write is an atomic batch appended to a sequential
 * log; a sync:false batch is lost in a crash unless a later synced batch (which flushes the log
 * up to itself) made it durable. Snapshot files are always fsynced, so they always survive.
 * `crash()` returns the storage a restarted server would find.
 */
export class MemoryStorage implements RaftStorage {
  readonly #retained: number;
  /** What a running server sees: every batch applied. */
  readonly #current: LogImage;
  /** What survives a crash: synced batches and everything before them. */
  readonly #durable: LogImage;
  /** Batches written with sync:false since the last synced one, oldest first. */
  readonly #unsynced: Batch[] = [];
  /** Snapshot files, newest (highest index, then term) first. */
  #snapshots: Snapshot[];
  #loaded = false;
  #operationRunning = false;
  #writeFault: Error | null = null;

  constructor(options: MemoryStorageOptions = {}) {
    const retained = options.snapshotsRetained ?? SNAPSHOTS_RETAINED_DEFAULT;
    assert(Number.isInteger(retained), 'snapshotsRetained must be an integer');
    assert(retained >= 1 && retained <= SNAPSHOTS_RETAINED_MAX, 'snapshotsRetained must be in 1..SNAPSHOTS_RETAINED_MAX');
    this.#retained = retained;
    this.#current = emptyImage();
    this.#durable = emptyImage();
    this.#snapshots = [];
  }

  /** How many sync:false batches a crash now would lose. */
  get unsyncedBatchCount(): number {
    return this.#unsynced.length;
  }

  /**
   * The storage a server finds after a crash now: every synced batch, plus the first
   * `unsyncedBatchesKept` unsynced ones (LevelDB's log is sequential and each batch is atomic,
   * so a crash keeps a prefix of whole batches; a torn batch fails LevelDB's record CRC and is
   * dropped whole). Call load() on it, as a restarted server would.
   */
  crash(unsyncedBatchesKept = 0): MemoryStorage {
    assert(Number.isInteger(unsyncedBatchesKept), 'crash: unsyncedBatchesKept must be an integer');
    assert(unsyncedBatchesKept >= 0 && unsyncedBatchesKept <= this.#unsynced.length, 'crash: keeps at most the unsynced batches');
    const restarted = new MemoryStorage({ snapshotsRetained: this.#retained });
    copyImage(this.#durable, restarted.#durable);
    for (const batch of this.#unsynced.slice(0, unsyncedBatchesKept)) applyBatch(restarted.#durable, batch);
    copyImage(restarted.#durable, restarted.#current);
    restarted.#snapshots = [...this.#snapshots];
    return restarted;
  }

  /**
   * Makes every later write reject with `error` (null: stop) without changing anything, as a
   * failing disk would. The driver must stop the server; the simulation then restarts it from
   * crash().
   */
  setWriteFault(error: Error | null): void {
    this.#writeFault = error;
  }

  /** Everything persisted so far: the hard state, the newest snapshot and the entries after it. */
  async load(): Promise<InitialState> {
    assert(!this.#loaded, 'MemoryStorage: load() is called once');
    this.#loaded = true;
    const image = this.#current;
    const snapshot = this.#snapshots[0] ?? null;
    const snapshotIndex = snapshot?.meta.index ?? 0;
    assert(image.logStartIndex <= snapshotIndex + 1, 'MemoryStorage: the log starts right after the snapshot at the latest');
    const entries: Entry[] = [];
    for (let index = snapshotIndex + 1; index <= image.lastIndex; index++) {
      const entry = image.entries.get(index);
      assert(entry !== undefined, 'MemoryStorage: the stored log is contiguous');
      assert(entry.index === index);
      entries.push(entry);
    }
    const lastIndex = Math.max(snapshotIndex, image.lastIndex);
    const hardState = clampCommit(image.hardState ?? EMPTY_HARD_STATE, snapshotIndex, lastIndex);
    return { hardState, snapshot, entries };
  }

  /** Applies one Ready as one batch; a snapshot is installed and synced in the same call. */
  async persist(request: PersistRequest): Promise<void> {
    this.#beginOperation();
    try {
      assertPersistRequest(request, this.#bounds(), this.#snapshots[0]?.meta.index ?? 0);
      const first = request.entries[0];
      if (request.snapshot !== null) {
        this.#addSnapshot(request.snapshot);
        this.#write(
          { truncateFrom: 1, logStartIndex: request.snapshot.meta.index + 1, entries: request.entries, hardState: request.hardState },
          true,
        );
        return;
      }
      if (first === undefined && request.hardState === null && !request.sync) return;
      const truncateFrom = first === undefined ? null : first.index;
      this.#write({ truncateFrom, logStartIndex: null, entries: request.entries, hardState: request.hardState }, request.sync);
    } finally {
      this.#operationRunning = false;
    }
  }

  /** Keeps the snapshot (durable at once, like an fsynced file), then compacts through compactIndex. */
  async saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void> {
    this.#beginOperation();
    try {
      assertSaveSnapshot(snapshot, compactIndex, this.#bounds(), this.#snapshots[0]?.meta.index ?? 0);
      this.#addSnapshot(snapshot);
      if (compactIndex >= this.#current.logStartIndex) {
        this.#write({ truncateFrom: null, logStartIndex: compactIndex + 1, entries: [], hardState: null }, true);
      }
    } finally {
      this.#operationRunning = false;
    }
  }

  /** Nothing to release; present for the interface. */
  async close(): Promise<void> {}

  #beginOperation(): void {
    assert(this.#loaded, 'MemoryStorage: load() must come first');
    assert(!this.#operationRunning, 'MemoryStorage: calls must not overlap');
    if (this.#writeFault !== null) throw this.#writeFault;
    this.#operationRunning = true;
  }

  #bounds(): StoredLogBounds {
    return { logStartIndex: this.#current.logStartIndex, lastIndex: this.#current.lastIndex };
  }

  #write(batch: Batch, sync: boolean): void {
    applyBatch(this.#current, batch);
    if (!sync) {
      this.#unsynced.push(batch);
      return;
    }
    // A synced batch flushes the sequential log up to itself: every earlier batch too.
    for (const earlier of this.#unsynced.splice(0)) applyBatch(this.#durable, earlier);
    applyBatch(this.#durable, batch);
  }

  #addSnapshot(snapshot: Snapshot): void {
    const others = this.#snapshots.filter((s) => s.meta.index !== snapshot.meta.index || s.meta.term !== snapshot.meta.term);
    others.push(snapshot);
    others.sort((a, b) => b.meta.index - a.meta.index || b.meta.term - a.meta.term);
    this.#snapshots = others.slice(0, this.#retained);
  }
}

function emptyImage(): LogImage {
  return { hardState: null, logStartIndex: 1, lastIndex: 0, entries: new Map() };
}

function copyImage(from: LogImage, to: LogImage): void {
  to.hardState = from.hardState;
  to.logStartIndex = from.logStartIndex;
  to.lastIndex = from.lastIndex;
  to.entries.clear();
  for (const [index, entry] of from.entries) to.entries.set(index, entry);
}

/** Applies a batch to an image, keeping the stored indexes exactly logStartIndex..lastIndex. */
function applyBatch(image: LogImage, batch: Batch): void {
  if (batch.truncateFrom !== null) {
    for (let index = Math.max(batch.truncateFrom, image.logStartIndex); index <= image.lastIndex; index++) image.entries.delete(index);
    image.lastIndex = Math.max(image.logStartIndex, batch.truncateFrom) - 1;
  }
  if (batch.logStartIndex !== null) {
    for (let index = image.logStartIndex; index < batch.logStartIndex && index <= image.lastIndex; index++) image.entries.delete(index);
    image.logStartIndex = batch.logStartIndex;
    image.lastIndex = Math.max(image.lastIndex, batch.logStartIndex - 1);
  }
  for (const entry of batch.entries) {
    assert(entry.index === image.lastIndex + 1, 'MemoryStorage: entries extend the log without a gap');
    image.entries.set(entry.index, entry);
    image.lastIndex = entry.index;
  }
  if (batch.hardState !== null) image.hardState = batch.hardState;
  assert(image.lastIndex >= image.logStartIndex - 1, 'MemoryStorage: lastIndex never falls before the log start');
}
