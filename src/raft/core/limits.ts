/**
 * Every bound of the Raft core, named, with its reason. Per-cluster values that operators may
 * tune live in RaftConfig (config.ts); these are the defaults and hard ceilings.
 */

/** hashicorp/raft defaults MaxAppendEntries to 64; more per message only helps a far-behind follower. */
export const APPEND_ENTRIES_COUNT_MAX = 64;

/** etcd's MaxSizePerMsg default is 1 MiB; one entry is always sent even if larger. */
export const APPEND_ENTRIES_BYTES_MAX = 1024 * 1024;

/** In-flight AppendEntries per follower (etcd MaxInflightMsgs is 256): bounds pipelining memory. */
export const INFLIGHT_MESSAGES_MAX = 256;

/** Snapshot chunks stay well below the transport's frame limit. */
export const SNAPSHOT_CHUNK_BYTES = 512 * 1024;

/** A received snapshot larger than this is refused: the state lives in memory. */
export const SNAPSHOT_BYTES_MAX = 2 * 1024 * 1024 * 1024 - 1;

/** One command: a 512 KiB KV value (Consul's limit) plus key and envelope, with room to spare. */
export const PROPOSAL_BYTES_MAX = 1536 * 1024;

/** Uncommitted bytes the leader accepts before refusing proposals (etcd MaxUncommittedEntriesSize). */
export const UNCOMMITTED_BYTES_MAX = 64 * 1024 * 1024;

/** Committed entries handed out per Ready; the rest come in the next one (bounds a turn's work). */
export const COMMITTED_BATCH_BYTES_MAX = 8 * 1024 * 1024;

/**
 * The highest term the core accepts. Terms grow by one per election: 2^48 is beyond any real
 * cluster's life, and far enough below 2^53 that term + 1 stays exact. A message claiming more
 * is a forgery or a bug and is dropped (a forged 2^53 − 1 once stopped a server for good).
 */
export const TERM_MAX = 2 ** 48;

/** Reads waiting for leadership confirmation; beyond this, readIndex refuses. */
export const PENDING_READS_MAX = 65536;
