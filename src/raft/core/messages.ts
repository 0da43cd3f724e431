import type { Entry, ServerId, SnapshotMeta } from './types.js';

/**
 * Raft messages between servers, named as in the paper. Every message carries its sender,
 * receiver and the sender's term. Plain data: the TCP transport encodes them with msgpackr.
 */
interface Envelope {
  readonly from: ServerId;
  readonly to: ServerId;
  readonly term: number;
}

/** RequestVote (Raft §5.2), or a pre-vote (§9.6) when `preVote` is set: term is then ours + 1. */
export interface RequestVote extends Envelope {
  readonly type: 'RequestVote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  readonly preVote: boolean;
  /** Set by a leadership transfer: voters ignore their leader lease for this request. */
  readonly transfer: boolean;
}

export interface RequestVoteResponse extends Envelope {
  readonly type: 'RequestVoteResponse';
  readonly granted: boolean;
  readonly preVote: boolean;
}

/** AppendEntries (Raft §5.3). `commit` is the leader's commit index. */
export interface AppendEntries extends Envelope {
  readonly type: 'AppendEntries';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * On success `matchIndex` is the last index the follower now holds from this request. On
 * rejection, `conflictIndex`/`conflictTerm` are the fast-backtracking hints (Raft thesis §5.3.4):
 * conflictTerm is the follower's term at prevLogIndex (0 when its log is too short) and
 * conflictIndex the first index it holds of that term (or its last index + 1).
 */
export interface AppendEntriesResponse extends Envelope {
  readonly type: 'AppendEntriesResponse';
  readonly success: boolean;
  readonly matchIndex: number;
  /** Echo of the request's prevLogIndex, so the leader can ignore stale rejections. */
  readonly rejectedIndex: number;
  readonly conflictIndex: number;
  readonly conflictTerm: number;
}

/**
 * A heartbeat: asserts leadership, carries a safe commit index (min of the follower's match and
 * the leader's commit) and a read context for ReadIndex rounds (0 when none).
 */
export interface Heartbeat extends Envelope {
  readonly type: 'Heartbeat';
  readonly commit: number;
  readonly readContext: number;
}

/**
 * `guardMs`: how long the follower now refuses to vote for anyone else (its election timeout,
 * the disruption guard). The leader's lease must end before the guards of a quorum do, whatever
 * election timeouts the servers were given.
 */
export interface HeartbeatResponse extends Envelope {
  readonly type: 'HeartbeatResponse';
  readonly readContext: number;
  readonly guardMs: number;
}

/** One chunk of a snapshot (Raft §7). Chunks go in order; `done` marks the last. */
export interface InstallSnapshot extends Envelope {
  readonly type: 'InstallSnapshot';
  readonly meta: SnapshotMeta;
  readonly offset: number;
  readonly totalBytes: number;
  readonly chunk: Uint8Array;
  readonly done: boolean;
}

/**
 * `success` with `nextOffset` acknowledges a chunk; after the last chunk `matchIndex` is the
 * snapshot index. A rejection (unexpected offset) makes the leader restart from offset 0.
 */
export interface InstallSnapshotResponse extends Envelope {
  readonly type: 'InstallSnapshotResponse';
  readonly success: boolean;
  readonly snapshotIndex: number;
  readonly nextOffset: number;
  readonly done: boolean;
}

/** Leadership transfer (Raft thesis §3.10): the receiver campaigns at once. */
export interface TimeoutNow extends Envelope {
  readonly type: 'TimeoutNow';
}

export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow;

export type MessageType = Message['type'];

/**
 * Messages a leader sends may leave before its own log write is durable: the leader counts its
 * own entries toward commitment only after the driver acknowledges persistence. Every response
 * and every vote request must wait for the write (a vote or a success is a promise about disk).
 */
export function mayPrecedePersist(message: Message): boolean {
  switch (message.type) {
    case 'AppendEntries':
    case 'Heartbeat':
    case 'InstallSnapshot':
    case 'TimeoutNow':
      return true;
    default:
      return false;
  }
}
