import { decodeUntrustedCommand } from '../state/commands.js';
import { statePackr } from '../state/wire.js';
import { isWellFormed } from '../state/ordered-map.js';
import { BadRequestError } from '../lib/errors.js';
import type { Consistency } from '../agent/agent-api.js';
import type { Query } from '../agent/queries.js';
// Services issue: the anti-entropy fields of a status report are parsed by service-sync.ts.
import { parseServiceSyncFields } from '../agent/service-sync.js';
import type { ServiceSyncFields } from '../agent/service-sync.js';

/**
 * RPC methods on the server port and the validation of their payloads. Payloads come from other
 * agents over the network: every field is checked before use, and a bad one is a 400-style error
 * back to the caller, never an exception inside the server (RELIABILITY.md P8).
 */
export const RPC_METHODS = {
  /** A follower or client forwards a write: `{ command: encoded Command, hop }`. */
  apply: 'Raft.Apply',
  /** A forwarded read: `{ packed: msgpack({ query, consistency, minIndex, waitMs, hop }) }`. */
  query: 'Raft.Query',
  renew: 'Session.Renew',
  /** A follower asks the leader to confirm a read index: `{ lease }` → index. */
  readIndex: 'Raft.ReadIndex',
  /** An agent's periodic status report (node name, id, address, meta). */
  report: 'Agent.Report',
  /** The members list, for client agents. */
  members: 'Agent.Members',
  raftConfiguration: 'Operator.RaftConfiguration',
  leader: 'Status.Leader',
  peers: 'Status.Peers',
  /** Cluster formation: who are you, do you belong to a cluster yet? */
  hello: 'Cluster.Hello',
  /** A server asks to be added to the configuration. */
  join: 'Cluster.Join',
  /** The leader's state as a snapshot archive: `{ packed }`. */
  snapshotSave: 'Snapshot.Save',
  /** Restore `{ archive }` through the leader. */
  snapshotRestore: 'Snapshot.Restore',
  /** Hand leadership to `{ id }` ('' = the most up-to-date voter). */
  transferLeader: 'Operator.TransferLeader',
  /** A server leaving gracefully asks the leader to remove it: `{ id }`. */
  leaveCluster: 'Cluster.Leave',
} as const;

/** Field length bounds for identifiers that arrive over RPC. */
const NAME_LENGTH_MAX = 256;
const META_ENTRIES_MAX = 64;

export interface ApplyRequest {
  readonly command: Uint8Array;
  /** Forwards so far (see ServerAgent); a missing hop counts as the maximum: no forwarding. */
  readonly hop: number;
}

export interface QueryRequest {
  readonly query: Query;
  readonly consistency: Consistency;
  readonly minIndex: number;
  readonly waitMs: number;
  readonly maxStaleMs: number | null;
  readonly hop: number;
}

/** Hops a request may claim; anything else is treated as "do not forward". */
const HOP_MAX = 8;

function hop(value: unknown): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= HOP_MAX ? n : HOP_MAX;
}

/**
 * An agent's periodic status report. The services issue added the anti-entropy fields
 * (`servicesHash`, `sync`: the agent's services and checks, see service-sync.ts).
 */
export interface StatusReport extends ServiceSyncFields {
  readonly node: string;
  readonly id: string;
  readonly address: string;
  readonly datacenter: string;
  readonly meta: Readonly<Record<string, string>>;
  readonly server: boolean;
  readonly leaving: boolean;
}

export interface HelloReply {
  readonly id: string;
  readonly address: string;
  readonly clusterId: string | null;
  readonly pristine: boolean;
  readonly bootstrapExpect: number;
  /** Its Raft term: 0 pristine, 1 bootstrapped and no election yet. */
  readonly term: number;
}

export interface JoinRequest {
  readonly id: string;
  readonly address: string;
}

function object(payload: unknown, what: string): Record<string, unknown> {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw new BadRequestError(`${what}: expected an object`);
  return payload as Record<string, unknown>;
}

function text(value: unknown, what: string, allowEmpty = false): string {
  if (typeof value !== 'string' || value.length > NAME_LENGTH_MAX || (!allowEmpty && value.length === 0)) throw new BadRequestError(`${what}: expected a string of at most ${NAME_LENGTH_MAX} characters`);
  return value;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new BadRequestError(`${what}: expected a non-negative integer`);
  return value;
}

export function parseApplyRequest(payload: unknown): ApplyRequest {
  const body = object(payload, 'apply');
  if (!(body.command instanceof Uint8Array)) throw new BadRequestError('apply: command must be bytes');
  return { command: body.command, hop: hop(body.hop) };
}

/** Limits on what a forwarded query may carry. */
const QUERY_STRING_LENGTH_MAX = 64 * 1024;
const QUERY_LIST_LENGTH_MAX = 1024;

function queryText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length > QUERY_STRING_LENGTH_MAX || !isWellFormed(value)) throw new BadRequestError(`${what}: expected a string`);
  return value;
}

/**
 * Checks every field of a forwarded query by its kind, so a malformed one from another agent is
 * a 400 here and never reaches an assertion in the state machine's read paths.
 */
function parseQuery(raw: Record<string, unknown>): Query {
  const kind = raw.kind;
  const optionalTexts = (field: string): void => {
    if (raw[field] === undefined) return;
    if (!Array.isArray(raw[field]) || (raw[field] as unknown[]).length > QUERY_LIST_LENGTH_MAX) throw new BadRequestError(`query.${field}: expected a list`);
    for (const item of raw[field] as unknown[]) queryText(item, `query.${field}[]`);
  };
  const optionalMeta = (): void => {
    if (raw.nodeMeta === undefined) return;
    const meta = object(raw.nodeMeta, 'query.nodeMeta');
    if (Object.keys(meta).length > QUERY_LIST_LENGTH_MAX) throw new BadRequestError('query.nodeMeta: too many pairs');
    for (const [key, value] of Object.entries(meta)) queryText(value, `query.nodeMeta.${queryText(key, 'query.nodeMeta key')}`);
  };
  const fields: Readonly<Record<string, readonly string[]>> = {
    'kv-get': ['key'], 'kv-list': ['prefix'], 'kv-keys': ['prefix', 'separator'], 'session-info': ['id'],
    'session-list': [], 'session-node': ['node'], 'catalog-nodes': [], 'catalog-services': [], 'catalog-service': ['service'],
    'service-instances': ['service'], 'catalog-node': ['node'], 'health-node': ['node'], 'health-state': ['state'],
    'health-service-checks': ['service'],
  };
  if (kind === 'txn-read') {
    // The txn op checks are the state machine's own; run them here on the untrusted ops.
    let packed: Uint8Array;
    try {
      packed = statePackr.pack({ type: 'txn', nowMs: 0, ops: raw.ops });
    } catch {
      throw new BadRequestError('query.ops: not encodable');
    }
    const command = decodeUntrustedCommand(packed);
    if (command.type !== 'txn') throw new BadRequestError('query.ops: not a list of txn ops');
    return { kind: 'txn-read', ops: command.ops };
  }
  if (typeof kind !== 'string' || fields[kind] === undefined) throw new BadRequestError('query.kind: not a known query');
  for (const field of fields[kind] ?? []) queryText(raw[field], `query.${field}`);
  optionalTexts('tags');
  optionalMeta();
  if (raw.passing !== undefined && typeof raw.passing !== 'boolean') throw new BadRequestError('query.passing: expected a boolean');
  return raw as unknown as Query;
}

export function parseQueryRequest(payload: unknown): QueryRequest {
  const body = object(payload, 'query');
  const query = parseQuery(object(body.query, 'query.query'));
  const consistency = body.consistency;
  if (consistency !== 'default' && consistency !== 'consistent' && consistency !== 'stale') throw new BadRequestError('query.consistency: expected default, consistent or stale');
  const minIndex = typeof body.minIndex === 'bigint' ? Number(body.minIndex) : count(body.minIndex, 'query.minIndex');
  const maxStale = body.maxStaleMs === null || body.maxStaleMs === undefined ? null : count(typeof body.maxStaleMs === 'bigint' ? Number(body.maxStaleMs) : body.maxStaleMs, 'query.maxStaleMs');
  return { query, consistency, minIndex, waitMs: count(typeof body.waitMs === 'bigint' ? Number(body.waitMs) : body.waitMs, 'query.waitMs'), maxStaleMs: maxStale, hop: hop(body.hop) };
}

export function parseRenewRequest(payload: unknown): { id: string; hop: number } {
  const body = object(payload, 'renew');
  return { id: text(body.id, 'renew.id'), hop: hop(body.hop) };
}

export function parseReportRequest(payload: unknown): StatusReport {
  const body = object(payload, 'report');
  const meta = object(body.meta ?? {}, 'report.meta');
  const entries = Object.entries(meta);
  if (entries.length > META_ENTRIES_MAX) throw new BadRequestError(`report.meta: at most ${META_ENTRIES_MAX} entries`);
  const cleanMeta: Record<string, string> = {};
  for (const [key, value] of entries) cleanMeta[text(key, 'report.meta key')] = text(value, `report.meta.${key}`, true);
  if (typeof body.server !== 'boolean' || typeof body.leaving !== 'boolean') throw new BadRequestError('report.server and report.leaving: expected booleans');
  return {
    node: text(body.node, 'report.node'),
    id: text(body.id, 'report.id'),
    address: text(body.address, 'report.address'),
    datacenter: text(body.datacenter, 'report.datacenter'),
    meta: cleanMeta,
    server: body.server,
    leaving: body.leaving,
    ...parseServiceSyncFields(body),
  };
}

export function parseHelloReply(payload: unknown): HelloReply {
  const body = object(payload, 'hello');
  const clusterId = body.clusterId === null ? null : text(body.clusterId, 'hello.clusterId');
  if (typeof body.pristine !== 'boolean') throw new BadRequestError('hello.pristine: expected a boolean');
  return { id: text(body.id, 'hello.id'), address: text(body.address, 'hello.address'), clusterId, pristine: body.pristine, bootstrapExpect: count(body.bootstrapExpect, 'hello.bootstrapExpect'), term: count(body.term, 'hello.term') };
}

export function parseJoinRequest(payload: unknown): JoinRequest {
  const body = object(payload, 'join');
  return { id: text(body.id, 'join.id'), address: text(body.address, 'join.address') };
}
