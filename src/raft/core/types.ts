/**
 * The vocabulary of the Raft core: log entries, hard state, configurations, snapshots and the
 * Ready a driver processes. Plain data only, so storage and transport can encode it as is.
 *
 * Terms and indexes are plain numbers (safe integers). Index 0 means "before the first entry";
 * term 0 means "no term".
 */

import type { Message } from './messages.js';

/** A server's id: stable across restarts and address changes. */
export type ServerId = string;

/**
 * Entry kinds. `normal` carries a host command; `noop` is appended by a new leader (Raft §8);
 * `config` carries a whole new Configuration, encoded by `encodeConfiguration`.
 */
export type EntryType = 'normal' | 'noop' | 'config';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  /** The command for `normal`, the encoded configuration for `config`, empty for `noop`. */
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log: persisted before any message that depends on it. */
export interface HardState {
  readonly term: number;
  /** The server voted for in `term`, or null. */
  readonly vote: ServerId | null;
  /** The highest index known committed. A hint after restart (clamped to the log). */
  readonly commit: number;
}

/** One server of a configuration. Non-voters receive the log but do not count for quorum. */
export interface ServerEntry {
  readonly id: ServerId;
  /** The RPC address (host:port) peers dial; opaque to the core. */
  readonly address: string;
  readonly voter: boolean;
}

export interface Configuration {
  readonly servers: readonly ServerEntry[];
}

/** Identifies the state a snapshot captures. */
export interface SnapshotMeta {
  /** The last log index the snapshot includes. */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The configuration in force at `index`. */
  readonly configuration: Configuration;
}

/** A state-machine snapshot: its metadata and the opaque bytes the FSM produced. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** A linearizable read the host may answer once its applied index reaches `index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: number;
}

/** A read that could not be confirmed (leadership lost before a quorum answered). */
export interface ReadFailure {
  readonly requestId: number;
  readonly reason: 'not-leader';
  readonly leaderId: ServerId | null;
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state that the host may want to show or act on; not persisted. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: ServerId | null;
  readonly term: number;
}

/**
 * Work for the driver, processed in this order before `advance(ready)`:
 * 1. persist `hardState`, `entries` and `snapshot` (synced if `mustSync`) — atomically;
 *    `entries` replace every stored entry with index >= entries[0].index;
 *    a `snapshot` replaces the whole stored log up to and including its index;
 * 2. send `messages` (those for which `mayPrecedePersist` holds may be sent before step 1);
 * 3. restore `snapshot` into the state machine (if any), then apply `committedEntries` in order;
 * 4. deliver `readStates` once the applied index reaches theirs; report `readFailures`.
 */
export interface Ready {
  readonly softState: SoftState | null;
  readonly hardState: HardState | null;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | null;
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
  /** True when term, vote or entries changed: the write must be fsynced before step 2. */
  readonly mustSync: boolean;
}

/**
 * What a driver may do while a Ready's write is in flight (RaftCore.interimReady): send
 * `messages` (all of them may precede a persist), apply `committedEntries` (durable on a majority
 * already), deliver `readStates` and report `readFailures`, exactly as for a Ready.
 */
export interface InterimReady {
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly readFailures: readonly ReadFailure[];
}

/** A proposal's fate as far as the core can tell at once. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  | { readonly ok: false; readonly reason: 'not-leader'; readonly leaderId: ServerId | null }
  | { readonly ok: false; readonly reason: 'transferring'; readonly leaderId: ServerId | null }
  | { readonly ok: false; readonly reason: 'too-large' | 'overloaded' | 'config-change-pending' | 'invalid-config-change' };

/** The state to start from: what storage loaded (all empty for a brand-new server). */
export interface InitialState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | null;
  /** Stored entries after the snapshot, contiguous and in order. */
  readonly entries: readonly Entry[];
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Encodes a configuration for a `config` entry (JSON keeps the core free of codec libraries). */
export function encodeConfiguration(configuration: Configuration): Uint8Array {
  return textEncoder.encode(JSON.stringify({ servers: configuration.servers.map((s) => ({ id: s.id, address: s.address, voter: s.voter })) }));
}

/** Decodes what `encodeConfiguration` wrote; throws on anything else. */
export function decodeConfiguration(data: Uint8Array): Configuration {
  const parsed: unknown = JSON.parse(textDecoder.decode(data));
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { servers?: unknown }).servers)) {
    throw new TypeError('configuration entry is not {servers: [...]}');
  }
  const servers: ServerEntry[] = [];
  for (const s of (parsed as { servers: unknown[] }).servers) {
    const server = s as { id?: unknown; address?: unknown; voter?: unknown };
    if (typeof server.id !== 'string' || typeof server.address !== 'string' || typeof server.voter !== 'boolean') {
      throw new TypeError('configuration server is not {id, address, voter}');
    }
    servers.push({ id: server.id, address: server.address, voter: server.voter });
  }
  return { servers };
}
