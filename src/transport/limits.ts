import { assert } from '../lib/assert.js';

/**
 * Every bound of the server-port transport, named, with its reason (STYLE §5). Relations between
 * them are asserted at load, so a change that breaks one fails at start-up, not under load.
 *
 * What the transport assumes about the Raft core (src/raft/core/limits.ts at the time of
 * writing): AppendEntries carry at most ~1 MiB of entries plus one oversized entry of at most
 * ~1.5 MiB (a 512 KiB KV value and its envelope), snapshots travel in chunks of at most 1 MiB.
 */

/** The largest Raft message the core builds: a ~1 MiB batch plus one ~1.5 MiB entry, rounded up. */
export const RAFT_MESSAGE_BYTES_EXPECTED_MAX = 3 * 1024 * 1024;

/**
 * Largest frame body, either way. Six times the largest Raft message (msgpack overhead, slack for
 * tuning), and room for forwarded read results (a recursive KV GET or a catalog listing) of
 * several MiB. Larger is a bug or an attack. It is checked on the 4-byte prefix, before a byte of
 * the body is buffered, so a 4 GiB prefix costs nothing; a connection buffers at most this much.
 */
export const FRAME_BYTES_MAX = 16 * 1024 * 1024;

/**
 * Largest frame before the handshake completes. A hello is under 300 bytes; until the peer has
 * proved it speaks our protocol, datacenter and cluster, it may make us buffer no more than this.
 * Bounds what INBOUND_CONNECTIONS_MAX strangers can pin: 512 × 4 KiB = 2 MiB.
 */
export const HANDSHAKE_FRAME_BYTES_MAX = 4 * 1024;

/** Bytes of the length prefix: a u32, big-endian. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Raft frames queued per peer while the connection is down or backed up. Heartbeats go every
 * tick (100 ms): 1024 covers 100 s of heartbeats, or far more than one pipelined window of
 * useful AppendEntries; beyond it the oldest frame is dropped (see PeerLink) and Raft retransmits.
 */
export const PEER_SEND_QUEUE_COUNT_MAX = 1024;

/**
 * Bytes queued per peer: about ten of the largest AppendEntries. With 4 peers a leader holds at
 * most 128 MiB of unsent frames; the core's own pipelining window (256 in flight) could ask for
 * more, and would then see drops and fall back to probing, which is the point.
 */
export const PEER_SEND_QUEUE_BYTES_MAX = 32 * 1024 * 1024;

/**
 * Inbound connections at once. Servers hold one per peer (≤ 7) plus one per client agent that
 * talks to them; a few hundred client agents is the deployment size we target. Each costs a file
 * descriptor and up to FRAME_BYTES_MAX of buffer once handshaken.
 */
export const INBOUND_CONNECTIONS_MAX = 512;

/** Outbound RPC connections (one per address called). Agents call a handful of servers. */
export const OUTBOUND_RPC_CONNECTIONS_MAX = 64;

/**
 * Time from dial (or accept) to a completed handshake. A hello crosses a LAN in milliseconds; 5 s
 * rides out a loaded peer and still frees a slot held by a silent stranger (slowloris) quickly.
 */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * Default RPC timeout. A forwarded write commits in milliseconds; 10 s rides out an election
 * (a few election timeouts of ≤ 2 s) before the HTTP caller sees an error. Blocking queries pass
 * their own (wait + margin).
 */
export const RPC_TIMEOUT_MS_DEFAULT = 10_000;

/** Longest allowed RPC timeout: Consul caps a blocking wait at 10 min, plus wait/16 of jitter. */
export const RPC_TIMEOUT_MS_MAX = 11 * 60 * 1000;

/** Calls awaiting a response, over all addresses. Beyond it `call` fails fast with ERR_OVERLOADED. */
export const RPC_PENDING_CALLS_MAX = 4096;

/**
 * Requests one inbound connection may have in progress at once. Each blocking query holds one; a
 * client agent rarely has more than a few dozen. Beyond it the request is answered ERR_OVERLOADED.
 */
export const INBOUND_REQUESTS_PER_CONNECTION_MAX = 512;

/**
 * Responses buffered for a peer that does not read them. Four maximal frames; past that the peer
 * is stuck or hostile, and the connection is closed rather than grow without bound.
 */
export const CONNECTION_WRITE_BUFFER_BYTES_MAX = 4 * FRAME_BYTES_MAX;

/**
 * First reconnect delay. Short enough that a peer back within an election timeout (≥ 1 s) gets
 * its connection before the next election; jitter spreads a whole cluster's redials.
 */
export const BACKOFF_MS_MIN = 100;

/**
 * Longest reconnect delay: a dead peer costs one dial per 2 s, and a restarted one is reached
 * within 2 s of listening (a leader replicates to it again within about one election timeout).
 */
export const BACKOFF_MS_MAX = 2_000;

/** TCP keep-alive idle time: finds a peer that vanished (power loss) under a long blocking query. */
export const KEEPALIVE_INITIAL_DELAY_MS = 15_000;

/** RPC method names ("KVS.Apply", "Status.Leader") are short; longer is garbage. */
export const METHOD_NAME_LENGTH_MAX = 128;

/** Remote error messages are cut to this: they end up in logs and HTTP bodies. */
export const ERROR_MESSAGE_LENGTH_MAX = 4096;

/** Error codes are identifiers like ERR_NO_LEADER. */
export const ERROR_CODE_LENGTH_MAX = 64;

/** Server ids, datacenter names, cluster ids, addresses: UUIDs and host names fit easily. */
export const IDENTIFIER_LENGTH_MAX = 256;

/**
 * Entries per AppendEntries. The core sends at most 64 (hashicorp/raft's MaxAppendEntries
 * default, which it refuses above 1024); 4096 leaves room for tuning and stops a peer from making
 * the core walk millions of tiny entries.
 */
export const RAFT_ENTRIES_PER_MESSAGE_MAX = 4096;

/** Servers in a snapshot's configuration: Raft clusters have 3–7 voters and a few learners. */
export const CONFIGURATION_SERVERS_MAX = 1024;

/** Nesting depth of an RPC payload: real ones are < 10 deep; deeper is an attack on the stack. */
export const PAYLOAD_DEPTH_MAX = 64;

assert(HANDSHAKE_FRAME_BYTES_MAX < FRAME_BYTES_MAX, 'handshake frames are the smallest frames');
assert(RAFT_MESSAGE_BYTES_EXPECTED_MAX * 4 <= FRAME_BYTES_MAX, 'a Raft message must fit a frame with room to spare');
assert(FRAME_BYTES_MAX <= 0xffff_ffff, 'the length prefix is a u32');
assert(PEER_SEND_QUEUE_BYTES_MAX >= 2 * FRAME_BYTES_MAX, 'a peer queue holds at least two maximal frames');
assert(CONNECTION_WRITE_BUFFER_BYTES_MAX >= 2 * FRAME_BYTES_MAX, 'a response buffer holds at least two maximal frames');
assert(BACKOFF_MS_MIN > 0, 'a zero backoff would redial in a tight loop');
assert(BACKOFF_MS_MIN < BACKOFF_MS_MAX, 'backoff grows from min to max');
assert(RPC_TIMEOUT_MS_DEFAULT <= RPC_TIMEOUT_MS_MAX, 'the default timeout is allowed');
assert(HANDSHAKE_TIMEOUT_MS < RPC_TIMEOUT_MS_DEFAULT, 'a call outlives the handshake it waits for');
