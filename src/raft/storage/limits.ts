import { assert } from '../../lib/assert.js';

/**
 * Every bound of Raft storage, each with its reason (STYLE §5). Checked when encoding and, for
 * lengths read from disk, before slicing or allocating.
 */

/** Indexes and terms are JS numbers; above this they lose precision and sort wrongly. */
export const INDEX_MAX = Number.MAX_SAFE_INTEGER;

/** Consul keeps 2 snapshots (`setupRaft()`); this is the default of `snapshotsRetained`. */
export const SNAPSHOTS_RETAINED_DEFAULT = 2;

/** Each retained snapshot is a full copy of the state; more than this is a configuration error. */
export const SNAPSHOTS_RETAINED_MAX = 64;

/**
 * A snapshot's metadata is its index, term and configuration. Thousands of servers fit in far
 * less; a larger length read from a file is corruption, caught before slicing.
 */
export const SNAPSHOT_META_BYTES_MAX = 1024 * 1024;

/**
 * A snapshot file is read whole with fs.readFile, which cannot read more than 2 GiB - 1 bytes
 * in one call. A larger state machine needs a streaming format (a new file version).
 */
export const SNAPSHOT_FILE_BYTES_MAX = 2 ** 31 - 1;

/**
 * One log entry's data. The core's proposal limit is far below this; it bounds what a record
 * read from disk may claim, and keeps one LevelDB value well under LevelDB's practical limits.
 */
export const ENTRY_DATA_BYTES_MAX = 64 * 1024 * 1024;

assert(SNAPSHOTS_RETAINED_DEFAULT >= 1, 'at least one snapshot must be kept');
assert(SNAPSHOTS_RETAINED_DEFAULT <= SNAPSHOTS_RETAINED_MAX);
assert(SNAPSHOT_META_BYTES_MAX < SNAPSHOT_FILE_BYTES_MAX);
