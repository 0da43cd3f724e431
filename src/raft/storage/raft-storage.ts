import type { Entry, HardState, InitialState, Snapshot } from '../core/types.js';

/** What one Raft turn asks storage to make durable, in one atomic batch. */
export interface PersistRequest {
  readonly hardState: HardState | null;
  /** Replace every stored entry with index >= entries[0].index by these. */
  readonly entries: readonly Entry[];
  /**
   * A snapshot received from the leader: write its file, then drop EVERY stored entry (the core
   * discarded its whole log when it installed the snapshot; any entries that follow the
   * snapshot come in `entries` of the same request, starting at snapshot.meta.index + 1).
   */
  readonly snapshot: Snapshot | null;
  /** fsync before resolving. False only when nothing but the commit hint changed. */
  readonly sync: boolean;
}

/**
 * The durable state of one Raft server: hard state, log and snapshots. The driver calls it from
 * one turn at a time, never concurrently. Every failure is fatal for the server (etcd's storage
 * contract): the driver crashes rather than continue with a disk it cannot trust.
 */
export interface RaftStorage {
  /**
   * Loads everything persisted. Throws CorruptionError naming what is wrong and where (file,
   * key, index) when data is corrupt, truncated or inconsistent (a gap in the log, a snapshot
   * whose checksum fails); never repairs silently.
   */
  load(): Promise<InitialState>;
  /** Makes one Ready durable: hard state, entries and snapshot in one synced batch. */
  persist(request: PersistRequest): Promise<void>;
  /**
   * Saves a snapshot the local state machine made (temp file, fsync, rename, directory fsync),
   * keeps the newest `snapshotsRetained`, then deletes log entries with index <= compactIndex.
   */
  saveSnapshot(snapshot: Snapshot, compactIndex: number): Promise<void>;
  /**
   * Optional: makes the snapshot's file durable ahead of saveSnapshot(), outside the turn; it may
   * overlap persist(). saveSnapshot() of the same snapshot then only compacts.
   */
  stageSnapshot?(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}
