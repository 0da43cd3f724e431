import { assert } from '../../lib/assert.js';
import type { HardState, Snapshot } from '../core/types.js';
import { assertEntry, assertHardState } from './record-codec.js';
import { assertSnapshotMeta } from './snapshot-store.js';
import type { PersistRequest } from './raft-storage.js';

/**
 * The rules both storages (LevelStorage and its MemoryStorage twin) hold the core to, and the
 * one repair they make to a loaded hard state. A broken rule here is a bug in the caller, so
 * these are assertions, not operating errors.
 */

/** Which entries are stored: exactly the indexes logStartIndex..lastIndex (none if last < start). */
export interface StoredLogBounds {
  /** Entries below it were compacted away or replaced by a received snapshot. */
  readonly logStartIndex: number;
  /** logStartIndex - 1 when no entry is stored. */
  readonly lastIndex: number;
}

/**
 * Asserts that `request` can be applied to a log with `bounds` whose newest snapshot ends at
 * `snapshotIndex` (0: none).
 */
export function assertPersistRequest(request: PersistRequest, bounds: StoredLogBounds, snapshotIndex: number): void {
  if (request.hardState !== null) assertHardState(request.hardState);
  const entries = request.entries;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    assert(entry !== undefined);
    assertEntry(entry);
    if (i === 0) continue;
    const previous = entries[i - 1];
    assert(previous !== undefined);
    assert(entry.index === previous.index + 1, 'persist: entries must be contiguous');
    assert(entry.term >= previous.term, 'persist: terms never decrease along the log');
  }
  const first = entries[0];
  if (request.snapshot !== null) {
    assertSnapshotMeta(request.snapshot.meta);
    assert(request.snapshot.meta.index >= 1, 'persist: a received snapshot covers at least one entry');
    // Our own snapshots hold applied, so committed, entries; the core ignores a received snapshot
    // that is not beyond its commit (etcd raft's restore()). Installing an older one would
    // leave our newer snapshot file in front of a log that does not continue it.
    assert(request.snapshot.meta.index > snapshotIndex, 'persist: received snapshot not newer than the newest snapshot');
    assert(request.snapshot.meta.index >= bounds.logStartIndex - 1, 'persist: received snapshot older than the compacted log');
    if (first !== undefined) {
      assert(first.index === request.snapshot.meta.index + 1, 'persist: entries sent with a snapshot start right after it');
      assert(first.term >= request.snapshot.meta.term, 'persist: entries after a snapshot have terms >= its term');
    }
    return;
  }
  if (first === undefined) return;
  assert(first.index >= bounds.logStartIndex, 'persist: entries must not rewrite the compacted prefix');
  assert(first.index <= bounds.lastIndex + 1, 'persist: entries must not leave a gap after the stored log');
}

/** Asserts that `snapshot` and `compactIndex` can be saved over a log with `bounds` and newest snapshot `snapshotIndex`. */
export function assertSaveSnapshot(snapshot: Snapshot, compactIndex: number, bounds: StoredLogBounds, snapshotIndex: number): void {
  assertSnapshotMeta(snapshot.meta);
  // The applied index never goes back, so neither do the state machine's snapshots.
  assert(snapshot.meta.index >= snapshotIndex, 'saveSnapshot: older than the newest snapshot');
  assert(Number.isSafeInteger(compactIndex), 'saveSnapshot: compactIndex must be a safe integer');
  assert(compactIndex >= 0, 'saveSnapshot: compactIndex must not be negative');
  assert(compactIndex <= snapshot.meta.index, 'saveSnapshot: never compact entries the snapshot does not cover');
  // The state machine only snapshots applied entries, and those are stored (or in a snapshot).
  assert(snapshot.meta.index <= bounds.lastIndex, 'saveSnapshot: the snapshot is ahead of the stored log');
}

/**
 * The loaded hard state with `commit` clamped to [snapshotIndex, lastIndex]. Commit is a hint
 * (the leader re-sends it): beyond the log end it is meaningless, and everything a snapshot
 * holds is committed. Neither is corruption.
 */
export function clampCommit(hardState: HardState, snapshotIndex: number, lastIndex: number): HardState {
  assert(snapshotIndex <= lastIndex, 'clampCommit: the log ends at or after the snapshot');
  const commit = Math.max(snapshotIndex, Math.min(hardState.commit, lastIndex));
  if (commit === hardState.commit) return hardState;
  return { term: hardState.term, vote: hardState.vote, commit };
}
