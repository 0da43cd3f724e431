import type { Command } from '../state/commands.js';
import type { ApplyResult } from '../state/fsm.js';
import type { Session } from '../state/sessions.js';
import type { LocalState } from './local-state.js';

/**
 * What the HTTP layer asks of an agent, whatever its mode. A server answers from its own Raft
 * and state machine (forwarding to the leader when it must); a client agent forwards everything
 * to a server over RPC. The HTTP routes never know which.
 */

/** Consul's read modes (consul-api.md §2). */
export type Consistency = 'default' | 'consistent' | 'stale';

/** The X-Consul-* meta of a read. `index` may be 0 here; HTTP sends 1 instead. */
export interface QueryMeta {
  readonly index: number;
  readonly knownLeader: boolean;
  /** Milliseconds since the answering server last heard from the leader (0 on the leader). */
  readonly lastContactMs: number;
}

/** How to run a read. */
export interface QueryOptions {
  readonly consistency: Consistency;
  /** 0: answer at once. Otherwise block until the result's index exceeds it, or `waitMs` passes. */
  readonly minIndex: number;
  /** The blocking wait, already defaulted (5 min) and clamped (10 min); jitter is added by the agent. */
  readonly waitMs: number;
  /** `?max_stale=`: with stale reads, how old the answering server's data may be; null = any. */
  readonly maxStaleMs: number | null;
  /** Aborts on client disconnect. */
  readonly signal: AbortSignal;
}

/** A committed write: what the state machine returned and the Raft index it was applied at. */
export interface WriteResult {
  readonly result: ApplyResult;
  readonly index: number;
}

/**
 * Whether a failed write may still take effect (the X-Conclave-Outcome header, RELIABILITY.md
 * B1): `not-applied` = refused before it was proposed; `unknown` = proposed, then timed out or
 * lost its leader before the result was known.
 */
export type WriteOutcome = 'not-applied' | 'unknown';

/** Identity and addresses of this agent (for /v1/agent/self and defaults such as a session's node). */
export interface AgentInfo {
  readonly nodeName: string;
  readonly nodeId: string;
  readonly datacenter: string;
  readonly server: boolean;
  readonly version: string;
  readonly revision: string;
  readonly buildDate: string;
  /** The address other agents reach us on (no port). */
  readonly advertiseAddress: string;
  readonly serverPort: number;
  readonly httpPort: number;
}

/** The agent seen from HTTP. Operating errors are AgentErrors (src/lib/errors.ts). */
export interface AgentApi {
  readonly info: AgentInfo;
  /**
   * The services and checks registered with this agent (`/v1/agent/service*`, `/v1/agent/check*`):
   * answered locally, whatever the mode; they reach the catalog through anti-entropy.
   */
  readonly local: LocalState;
  /**
   * Commits `command` through Raft (via the leader) and returns its result once applied. The
   * leader stamps `nowMs`. On failure the thrown error has an `outcome: WriteOutcome` property.
   */
  write(command: Command, signal?: AbortSignal): Promise<WriteResult>;
  /** Runs a read with the given consistency, blocking if asked (forwarded where needed). */
  query<Q extends import('./queries.js').Query>(query: Q, options: QueryOptions): Promise<{ value: import('./queries.js').QueryValue<Q>; meta: QueryMeta }>;
  /** Resets a session's TTL timer on the leader; null if the session does not exist. */
  renewSession(id: string, signal?: AbortSignal): Promise<Session | null>;
  /** The leader's Raft address (`ip:port`), or "" when none is known. */
  leaderAddress(): Promise<string>;
  /** The Raft addresses of every server in the configuration. */
  peerAddresses(): Promise<string[]>;
  /**
   * The cluster's members (consul-api.md §10 Member), from the catalog's nodes and their
   * serfHealth: alive (1), left (3) or failed (4). Servers carry role "consul".
   */
  members(): Promise<MemberInfo[]>;
  /** `PUT /v1/agent/join/<address>`: a server joins the cluster there; a client adds the server. */
  join(address: string): Promise<void>;
  /** `PUT /v1/agent/leave`: leave gracefully (marked left, removed from Raft), then shut down. */
  leave(): Promise<void>;
  /** `PUT /v1/agent/force-leave/<node>`: mark a failed node left (deregister it; `prune` too). */
  forceLeave(node: string, prune: boolean): Promise<void>;
  /** The Raft configuration and leader, for `/v1/operator/raft/configuration` and the UI. */
  raftConfiguration(): Promise<RaftConfigurationInfo>;
  /**
   * `DELETE /v1/operator/raft/peer`: removes the server whose Raft ID is `id` from the Raft
   * configuration, through the leader (a client agent forwards it to a server). Only Raft: the
   * catalog is not touched (Consul's RaftRemovePeerByID). HTTP has already resolved `?address=`
   * to an ID and checked that the ID is in the configuration; an ID that is gone by the time the
   * leader looks is a no-op.
   */
  removeRaftPeer(id: string): Promise<void>;
  /**
   * `/v1/operator/raft/transfer-leader[?id=]`: hands leadership to `id` (or to the most
   * up-to-date voter) and resolves once another server leads; throws if that does not happen.
   */
  transferLeader(id: string | null): Promise<void>;
  /** `GET /v1/snapshot`: the whole state as an archive (from the leader unless `stale`). */
  snapshotSave(stale: boolean): Promise<{ index: number; archive: Uint8Array }>;
  /** `PUT /v1/snapshot`: replaces the whole state, on every server, through the log. */
  snapshotRestore(archive: Uint8Array): Promise<void>;
  /** A diagnostic snapshot of this server's Raft state (`/v1/debug/raft`); null on a client agent. */
  raftStatus(): Record<string, unknown> | null;
  /**
   * A digest of the whole replicated state at the applied index (`/v1/debug/loghash`): servers
   * at the same index must agree exactly (state-machine safety). Null on a client agent.
   */
  stateDigest(): { index: number; hash: string } | null;
}

/** One member, as Consul's Member JSON needs it. */
export interface MemberInfo {
  readonly name: string;
  readonly address: string;
  readonly server: boolean;
  /** 1 alive, 2 leaving, 3 left, 4 failed (Serf's member status). */
  readonly status: 1 | 2 | 3 | 4;
  readonly nodeId: string;
  readonly datacenter: string;
  /** The server RPC port (servers only). */
  readonly serverPort: number | null;
  readonly meta: Readonly<Record<string, string>>;
}

/** `/v1/operator/raft/configuration` (consul-api.md §13). */
export interface RaftConfigurationInfo {
  readonly servers: readonly {
    readonly id: string;
    readonly node: string;
    readonly address: string;
    readonly leader: boolean;
    readonly voter: boolean;
    /** The last log index known on that server (the leader's view; 0 when unknown). */
    readonly lastIndex: number;
  }[];
  /** The commit index the answer reflects. */
  readonly index: number;
}
