/**
 * The Cluster view's data: the Raft picture no Consul UI gives. It combines what the page's own
 * agent can tell, over its own HTTP API only (no cross-origin calls to other agents):
 * - `/v1/operator/raft/configuration`: the servers, voters, who leads, each server's LastIndex;
 * - `/v1/debug/raft` (servers only; 404 on a client agent): this server's term, commit and
 *   applied index, last contact, lease, and — when it is the leader — `progress` per follower
 *   (match, next, probe/replicate/snapshot, recently active);
 * - `/v1/status/leader` and `/v1/agent/members` to name the leader and the servers.
 * Per-follower replication is therefore known when the page's agent is the leader; elsewhere the
 * view says so and shows what that server knows. Without a leader the configuration endpoint
 * fails, and the server's own Raft configuration (from debug) is shown instead.
 */
import { indexOf } from './consul-json.js';
import type { Member } from './catalog-model.js';

/** `/v1/debug/raft` as the UI reads it. */
export interface RaftStatus {
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  /** ms since the leader was last heard from; 0 on the leader; null if never. */
  readonly lastContactMs: number | null;
  readonly leaseValid: boolean;
  readonly servers: readonly { readonly id: string; readonly address: string; readonly voter: boolean }[];
  readonly progress: readonly { readonly id: string; readonly match: number; readonly next: number; readonly state: string; readonly recentActive: boolean }[];
}

/** `/v1/operator/raft/configuration` as the UI reads it. */
export interface RaftConfiguration {
  readonly servers: readonly { readonly id: string; readonly node: string; readonly address: string; readonly leader: boolean; readonly voter: boolean; readonly lastIndex: number }[];
  readonly index: number;
}

const record = (value: unknown): Record<string, unknown> => (typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : {});
const text = (value: unknown): string => (typeof value === 'string' ? value : '');
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** Reads `/v1/debug/raft`. */
export function raftStatusOf(json: unknown): RaftStatus {
  const status = record(json);
  if (typeof status.id !== 'string' || typeof status.role !== 'string') throw new TypeError('not a Raft status');
  return {
    id: status.id,
    role: status.role,
    term: indexOf(status.term),
    leaderId: typeof status.leaderId === 'string' && status.leaderId !== '' ? status.leaderId : null,
    commitIndex: indexOf(status.commitIndex),
    appliedIndex: indexOf(status.appliedIndex),
    lastIndex: indexOf(status.lastIndex),
    snapshotIndex: indexOf(status.snapshotIndex),
    lastContactMs: typeof status.lastContactMs === 'number' ? status.lastContactMs : null,
    leaseValid: status.leaseValid === true,
    servers: list(record(status.configuration).servers).map((item) => {
      const server = record(item);
      return { id: text(server.id), address: text(server.address), voter: server.voter !== false };
    }),
    progress: list(status.progress).map((item) => {
      const progress = record(item);
      return { id: text(progress.id), match: indexOf(progress.match), next: indexOf(progress.next), state: text(progress.state), recentActive: progress.recentActive === true };
    }),
  };
}

/** Reads `/v1/operator/raft/configuration`. */
export function raftConfigurationOf(json: unknown): RaftConfiguration {
  const body = record(json);
  return {
    servers: list(body.Servers).map((item) => {
      const server = record(item);
      return { id: text(server.ID), node: text(server.Node), address: text(server.Address), leader: server.Leader === true, voter: server.Voter !== false, lastIndex: indexOf(server.LastIndex) };
    }),
    index: indexOf(body.Index),
  };
}

/** One server of the Cluster view. */
export interface ServerRow {
  readonly id: string;
  /** The node name, when known (configuration or members). */
  readonly node: string | null;
  readonly address: string;
  readonly voter: boolean;
  readonly isLeader: boolean;
  /** The server whose UI this is. */
  readonly isSelf: boolean;
  /** LastIndex from the configuration (0 = not known), or this server's own last index. */
  readonly lastIndex: number | null;
  /** From the leader's progress: the highest index known replicated there. */
  readonly match: number | null;
  /** Entries the leader has that this server lacks (leader's last index − match). */
  readonly lag: number | null;
  /** The leader's replication state for it: probe, replicate or snapshot. */
  readonly replication: string | null;
  /** Whether the leader heard from it within the last election timeout. */
  readonly recentActive: boolean | null;
}

/** Everything the Cluster view shows. */
export interface ClusterPicture {
  readonly leader: { readonly id: string; readonly node: string | null; readonly address: string } | null;
  /** This agent's Raft state; null on a client agent (or before the first answer). */
  readonly self: RaftStatus | null;
  readonly rows: readonly ServerRow[];
  /** True when the rows carry replication figures (the page's agent leads). */
  readonly hasReplication: boolean;
  /** Where the server list came from. */
  readonly source: 'configuration' | 'local-raft' | 'none';
  readonly configurationIndex: number | null;
}

/** What the Cluster view has fetched (each part may be missing). */
export interface ClusterInputs {
  readonly configuration: RaftConfiguration | null;
  readonly status: RaftStatus | null;
  /** `/v1/status/leader`: the leader's Raft address, "" for none, null when unknown. */
  readonly leaderAddress: string | null;
  readonly members: readonly Member[];
}

/** Combines the inputs into the picture (see the file comment). */
export function clusterPicture(inputs: ClusterInputs): ClusterPicture {
  const { configuration, status, leaderAddress, members } = inputs;
  const nodeOf = (id: string): string | null => configuration?.servers.find((server) => server.id === id && server.node !== '')?.node
    ?? members.find((member) => member.id === id)?.name ?? null;
  const base = configuration !== null
    ? configuration.servers.map((server) => ({ id: server.id, address: server.address, voter: server.voter, leaderFlag: server.leader, lastIndex: server.lastIndex }))
    : (status?.servers ?? []).map((server) => ({ id: server.id, address: server.address, voter: server.voter, leaderFlag: false, lastIndex: 0 }));
  const leaderId = leaderIdOf(base, status, leaderAddress);
  const selfLeads = status !== null && status.role === 'leader';
  const progress = new Map((selfLeads ? status.progress : []).map((entry) => [entry.id, entry]));
  const rows = base.map((server): ServerRow => {
    const isSelf = status !== null && server.id === status.id;
    const entry = progress.get(server.id);
    const replicated = selfLeads && isSelf ? status.lastIndex : entry?.match ?? null;
    return {
      id: server.id,
      node: nodeOf(server.id),
      address: server.address,
      voter: server.voter,
      isLeader: server.id === leaderId,
      isSelf,
      lastIndex: isSelf && status !== null ? status.lastIndex : server.lastIndex > 0 ? server.lastIndex : null,
      match: replicated,
      lag: selfLeads && replicated !== null ? Math.max(0, status.lastIndex - replicated) : null,
      replication: selfLeads ? (isSelf ? 'leader' : entry?.state ?? null) : null,
      recentActive: selfLeads ? (isSelf ? true : entry?.recentActive ?? null) : null,
    };
  });
  const leaderRow = rows.find((row) => row.isLeader);
  return {
    leader: leaderRow === undefined ? null : { id: leaderRow.id, node: leaderRow.node, address: leaderRow.address },
    self: status,
    rows,
    hasReplication: selfLeads,
    source: configuration !== null ? 'configuration' : status !== null ? 'local-raft' : 'none',
    configurationIndex: configuration?.index ?? null,
  };
}

/** Who leads: the configuration's flag, else this server's leaderId, else the leader address. */
function leaderIdOf(servers: readonly { id: string; address: string; leaderFlag: boolean }[], status: RaftStatus | null, leaderAddress: string | null): string | null {
  const flagged = servers.find((server) => server.leaderFlag);
  if (flagged !== undefined) return flagged.id;
  if (status !== null) return status.leaderId; // a server's own view wins over a stale address
  if (leaderAddress !== null && leaderAddress !== '') return servers.find((server) => server.address === leaderAddress)?.id ?? null;
  return null;
}
