/**
 * Every bound of the replicated state machine, named, with its reason (TigerBeetle: "put a limit
 * on everything"). The HTTP layer checks the request-facing ones before proposing a command; the
 * FSM asserts the ones a committed command can never exceed.
 */
import { assert } from '../lib/assert.js';

/** Consul's `kv_max_value_size` default: a larger PUT body gets a 413 before it is proposed. */
export const KV_VALUE_BYTES_MAX = 512 * 1024;

/** Consul ≥ 1.14 (`maxTxnOps`, was 64): more ops get `413 Transaction contains too many operations`. */
export const TXN_OPS_COUNT_MAX = 128;

/** Consul's `txn_max_req_len` default: the whole `/v1/txn` body, checked by the HTTP layer. */
export const TXN_BODY_BYTES_MAX = 512 * 1024;

/**
 * One encoded command. A kv-set carries at most a 512 KiB value plus a key from a URL (Node caps
 * headers at 16 KiB); a txn comes from a body of at most 512 KiB whose values shrink when base64
 * is decoded. 1 MiB leaves room for both and stays well under the Raft frame limit (4 MiB).
 */
export const COMMAND_BYTES_MAX = 1024 * 1024;

/** Consul's `structs.MaxLockDelay`: a session's lock-delay is capped at 60 s when applied. */
export const LOCK_DELAY_MS_MAX = 60_000;

/**
 * Lock-delay records are pruned once their deadline has passed; a sweep runs when the table grows
 * past this many records, so it stays small without scanning it on every invalidation.
 */
export const LOCK_DELAY_SWEEP_THRESHOLD = 1024;

/**
 * Blocking queries waiting at once on one server. Each holds an HTTP connection for up to 10 min;
 * past this the server is overloaded and the HTTP layer answers 429 rather than queue without bound.
 */
export const WATCH_WAITERS_MAX = 16_384;

/**
 * Entries per B+ tree node. 64 keeps each node's arrays short enough that `splice` is cheap,
 * while the tree stays ≤ 4 levels deep for 10 million keys.
 */
export const ORDERED_MAP_NODE_ENTRIES_MAX = 64;

/**
 * Decoded KV values up to this size are copied into shared buffers (wire.ts ByteSlab,
 * copyBytesTogether); larger ones get a buffer of their own, so one live large value never keeps
 * a slab of dead neighbours and no slab is mostly one value.
 */
export const SLAB_VALUE_BYTES_MAX = 4096;

/**
 * The shared buffers a snapshot's KV values are restored into: ~600 values of 100 bytes each,
 * one ArrayBuffer for them instead of one per value. Small enough that a slab whose values were
 * mostly overwritten since is not much memory.
 */
export const RESTORE_VALUE_SLAB_BYTES = 64 * 1024;

/**
 * KV rows a Raft snapshot sizes or writes per step between event-loop turns (a few ms of work:
 * heartbeats and applies go on while a 1M-key state is serialized).
 */
export const SNAPSHOT_ROWS_PER_STEP = 16_384;

/** Consul's session TTL upper bound (`[10s, 24h]`); the FSM asserts TTLs never exceed it. */
export const SESSION_TTL_NS_MAX = 24 * 60 * 60 * 1_000_000_000;

/** A service's port is a TCP/UDP port number. */
export const SERVICE_PORT_MAX = 65_535;

/** A uint64 (Flags, cas indexes): Consul's wire type. */
export const UINT64_MAX = (1n << 64n) - 1n;

/**
 * The one 0n every decoded zero shares (wire.ts, msgpack-reader.ts). Each decoded uint64 is a
 * BigInt heap object of its own (~24 bytes); Flags is 0 on almost every key.
 */
export const UINT64_ZERO = 0n;

/** A restored snapshot is held in memory (staged, then decoded): bounded well below the heap. */
export const RESTORE_BYTES_MAX = 512 * 1024 * 1024;

/** One restore chunk per log entry, well inside COMMAND_BYTES_MAX with its envelope. */
export const RESTORE_CHUNK_BYTES_MAX = 512 * 1024;

assert(KV_VALUE_BYTES_MAX + 16 * 1024 < COMMAND_BYTES_MAX, 'a maximal kv-set must fit a command');
assert(TXN_BODY_BYTES_MAX < COMMAND_BYTES_MAX, 'a maximal txn must fit a command');
assert(ORDERED_MAP_NODE_ENTRIES_MAX >= 4, 'a B+ tree node must split into halves of at least 2');
assert(Number.isSafeInteger(SESSION_TTL_NS_MAX), 'TTLs in ns must be exact JS numbers');
assert(RESTORE_VALUE_SLAB_BYTES >= 4 * SLAB_VALUE_BYTES_MAX, 'a restore slab holds several of the largest shared values');
