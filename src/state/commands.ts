/**
 * The commands of the replicated state machine: typed objects, encoded with msgpack into Raft
 * entries. Every server applies the same committed commands in the same order, so a command
 * carries everything that is not already in the state: the leader's wall clock (`nowMs`, used for
 * lock-delays), and ids the proposer generated (session UUIDs).
 *
 * Numbers: Raft/modify indexes, ms and ns are JS numbers and must be safe integers (Raft indexes
 * are; asserted). Values a client sends as uint64 (Flags, `?cas=`, txn `Index`) are bigints, so
 * 2^64-1 survives exactly and error texts print the client's exact digits.
 */
import { assert, assertNever } from '../lib/assert.js';
import { COMMAND_BYTES_MAX, KV_VALUE_BYTES_MAX, LOCK_DELAY_MS_MAX, SESSION_TTL_NS_MAX, TXN_OPS_COUNT_MAX } from './limits.js';
import type { WireObject } from './wire.js';
import {
  expectArray,
  expectBoolean,
  expectBytesOrNull,
  expectCount,
  expectObject,
  expectOneOf,
  expectString,
  expectStringArray,
  expectStringRecord,
  expectUint64,
  statePackr,
} from './wire.js';

/** Consul's check states (`api.HealthPassing`, ..., `api.HealthMaint`). */
export type HealthStatus = 'passing' | 'warning' | 'critical' | 'maintenance';
/** Every HealthStatus, for validation. */
export const HEALTH_STATUSES: readonly HealthStatus[] = ['passing', 'warning', 'critical', 'maintenance'];

/** What invalidating a session does to the keys it holds (Consul `SessionKeysRelease/Delete`). */
export type SessionBehavior = 'release' | 'delete';
/** Every SessionBehavior, for validation. */
export const SESSION_BEHAVIORS: readonly SessionBehavior[] = ['release', 'delete'];

/** How a `kv-set` writes: `PUT /v1/kv/k`, `?cas=`, `?acquire=`, `?release=`. */
export type KvSetVerb =
  | { readonly kind: 'set' }
  | { readonly kind: 'cas'; readonly index: bigint }
  | { readonly kind: 'acquire'; readonly session: string }
  | { readonly kind: 'release'; readonly session: string };

/** `PUT /v1/kv/<key>`. Result: `bool`. A zero-length value is stored as null (Consul: `"Value":null`). */
export interface KvSetCommand {
  readonly type: 'kv-set';
  readonly nowMs: number;
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly flags: bigint;
  readonly verb: KvSetVerb;
}

/** `DELETE /v1/kv/<key>[?recurse|?cas=]`. Result: `bool`. */
export interface KvDeleteCommand {
  readonly type: 'kv-delete';
  readonly nowMs: number;
  readonly key: string;
  /** `?cas=N`; null for a plain or recursive delete (Consul rejects both together with a 400). */
  readonly casIndex: bigint | null;
  readonly recurse: boolean;
}

/**
 * One KV op of `/v1/txn`, as the client sent it. `verb` stays a string: an unknown verb is a
 * per-op error (`unknown KV verb "x"`) reported with the others, as Consul does.
 */
export interface TxnKvOp {
  readonly verb: string;
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly flags: bigint;
  /** `Index` (cas, check-index, delete-cas); 0 when absent. */
  readonly index: bigint;
  /** `Session` (lock, unlock, check-session); "" when absent. */
  readonly session: string;
}

/** `PUT /v1/txn` with at least one write. Result: `txn`. */
export interface TxnCommand {
  readonly type: 'txn';
  readonly nowMs: number;
  readonly ops: readonly TxnKvOp[];
}

/** A service check a session depends on (`ServiceChecks: [{ID, Namespace}]`). */
export interface ServiceCheckRef {
  readonly id: string;
  readonly namespace: string;
}

/**
 * `PUT /v1/session/create`, with defaults already applied by the HTTP layer. Result: `session`.
 * `lockDelayNs` is nanoseconds because Consul echoes `LockDelay` in ns: a ms number would lose
 * sub-ms inputs like `"1500us"`. `ttl` is the string as given (echoed exactly); `ttlNs` is its
 * parsed value (0 = none), for the leader's timers.
 */
export interface SessionCreateCommand {
  readonly type: 'session-create';
  readonly nowMs: number;
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly lockDelayNs: number;
  readonly behavior: SessionBehavior;
  readonly ttl: string;
  readonly ttlNs: number;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: readonly ServiceCheckRef[];
}

/** `PUT /v1/session/destroy/<id>`, and the leader's TTL expiry. Result: `done` (even if unknown). */
export interface SessionDestroyCommand {
  readonly type: 'session-destroy';
  readonly nowMs: number;
  readonly id: string;
}

/** A health check as registered (HealthCheck of consul-api.md §12, minus what HTTP fills in). */
export interface CheckDefinition {
  readonly checkId: string;
  readonly name: string;
  readonly status: HealthStatus;
  readonly notes: string;
  readonly output: string;
  /** "" for a node-level check such as `serfHealth`. */
  readonly serviceId: string;
  readonly serviceName: string;
  readonly serviceTags: readonly string[];
  readonly type: string;
  readonly interval: string;
  readonly timeout: string;
}

/**
 * Upserts a catalog node and the given checks (checks not listed are kept, as with Consul's
 * catalog register). A check registered as critical invalidates the sessions that depend on it.
 * Result: `done`.
 */
export interface NodeRegisterCommand {
  readonly type: 'node-register';
  readonly nowMs: number;
  readonly node: string;
  readonly id: string;
  readonly address: string;
  readonly datacenter: string;
  readonly taggedAddresses: Readonly<Record<string, string>>;
  readonly meta: Readonly<Record<string, string>>;
  readonly checks: readonly CheckDefinition[];
}

/** Removes a node, its checks, and invalidates all its sessions. Result: `done`. */
export interface NodeDeregisterCommand {
  readonly type: 'node-deregister';
  readonly nowMs: number;
  readonly node: string;
}

/** Sets a check's status and output; critical invalidates dependent sessions. Result: `done` or `error`. */
export interface CheckUpdateCommand {
  readonly type: 'check-update';
  readonly nowMs: number;
  readonly node: string;
  readonly checkId: string;
  readonly status: HealthStatus;
  readonly output: string;
}

/** Removes one check; sessions depending on it are invalidated. Result: `done`. */
export interface CheckDeregisterCommand {
  readonly type: 'check-deregister';
  readonly nowMs: number;
  readonly node: string;
  readonly checkId: string;
}

/**
 * Drops KV tombstones with a delete index ≤ `reapIndex` (Consul's TombstoneReap, proposed by the
 * leader's tombstone GC about 15 min after deletes). Prefix indexes may then regress. Result: `done`.
 */
export interface TombstoneReapCommand {
  readonly type: 'tombstone-reap';
  readonly nowMs: number;
  readonly reapIndex: number;
}

/** Every command the FSM applies. */
export type Command =
  | KvSetCommand
  | KvDeleteCommand
  | TxnCommand
  | SessionCreateCommand
  | SessionDestroyCommand
  | NodeRegisterCommand
  | NodeDeregisterCommand
  | CheckUpdateCommand
  | CheckDeregisterCommand
  | TombstoneReapCommand;

/** The `type` tag of a command. */
export type CommandType = Command['type'];

/** The command with tag `T`. */
export type CommandOf<T extends CommandType> = Extract<Command, { readonly type: T }>;

type CommandParser<T extends CommandType> = (raw: WireObject) => CommandOf<T>;

/** One parser per command type: the compiler rejects a missing one. */
const COMMAND_PARSERS: { readonly [T in CommandType]: CommandParser<T> } = {
  'kv-set': parseKvSet,
  'kv-delete': parseKvDelete,
  txn: parseTxn,
  'session-create': parseSessionCreate,
  'session-destroy': (raw) => ({ type: 'session-destroy', nowMs: nowOf(raw), id: nonEmpty(raw['id'], 'id') }),
  'node-register': parseNodeRegister,
  'node-deregister': (raw) => ({ type: 'node-deregister', nowMs: nowOf(raw), node: nonEmpty(raw['node'], 'node') }),
  'check-update': (raw) => ({
    type: 'check-update',
    nowMs: nowOf(raw),
    node: nonEmpty(raw['node'], 'node'),
    checkId: nonEmpty(raw['checkId'], 'checkId'),
    status: expectOneOf(raw['status'], HEALTH_STATUSES, 'status'),
    output: expectString(raw['output'], 'output'),
  }),
  'check-deregister': (raw) => ({
    type: 'check-deregister',
    nowMs: nowOf(raw),
    node: nonEmpty(raw['node'], 'node'),
    checkId: nonEmpty(raw['checkId'], 'checkId'),
  }),
  'tombstone-reap': (raw) => ({ type: 'tombstone-reap', nowMs: nowOf(raw), reapIndex: expectCount(raw['reapIndex'], 'reapIndex') }),
};

/** Every command type, in a stable order. */
export const COMMAND_TYPES = Object.keys(COMMAND_PARSERS) as CommandType[];

/**
 * Validates a command (asserting: a malformed command is a bug in the proposer) and encodes it.
 * The encoded form round-trips through `decodeCommand` to an equal command.
 */
export function encodeCommand(command: Command): Uint8Array {
  const checked = parseCommand(command as unknown as WireObject);
  const bytes = statePackr.pack(checked);
  assert(bytes.byteLength <= COMMAND_BYTES_MAX, `command of ${bytes.byteLength} bytes exceeds COMMAND_BYTES_MAX`);
  // A copy: msgpackr returns a view into its shared output buffer.
  return new Uint8Array(bytes);
}

/** Decodes and validates a command from a committed entry; anything malformed asserts. */
export function decodeCommand(bytes: Uint8Array): Command {
  assert(bytes.byteLength > 0, 'empty command');
  assert(bytes.byteLength <= COMMAND_BYTES_MAX, 'command exceeds COMMAND_BYTES_MAX');
  return parseCommand(expectObject(statePackr.unpack(bytes), 'command'));
}

/** Checks every field of `raw` and builds a fresh typed command (unknown fields are dropped). */
export function parseCommand(raw: WireObject): Command {
  const type = expectOneOf(raw['type'], COMMAND_TYPES, 'command type');
  const parser = COMMAND_PARSERS[type] as CommandParser<CommandType>;
  return parser(raw);
}

function nowOf(raw: WireObject): number {
  return expectCount(raw['nowMs'], 'nowMs');
}

function nonEmpty(value: unknown, what: string): string {
  const text = expectString(value, what);
  assert(text.length > 0, `${what} must not be empty`);
  return text;
}

function valueOf(raw: WireObject, what: string): Uint8Array | null {
  const value = expectBytesOrNull(raw['value'], what);
  assert(value === null || value.byteLength <= KV_VALUE_BYTES_MAX, `${what} exceeds KV_VALUE_BYTES_MAX`);
  return value === null || value.byteLength === 0 ? null : value;
}

function parseKvSetVerb(value: unknown): KvSetVerb {
  const raw = expectObject(value, 'verb');
  const kind = expectOneOf(raw['kind'], ['set', 'cas', 'acquire', 'release'] as const, 'verb kind');
  switch (kind) {
    case 'set':
      return { kind };
    case 'cas':
      return { kind, index: expectUint64(raw['index'], 'cas index') };
    case 'acquire':
    case 'release':
      // An empty session is valid input: the FSM answers `missing session`, as Consul does.
      return { kind, session: expectString(raw['session'], 'session') };
    default:
      return assertNever(kind, 'kv-set verb');
  }
}

function parseKvSet(raw: WireObject): KvSetCommand {
  return {
    type: 'kv-set',
    nowMs: nowOf(raw),
    key: nonEmpty(raw['key'], 'key'),
    value: valueOf(raw, 'value'),
    flags: expectUint64(raw['flags'], 'flags'),
    verb: parseKvSetVerb(raw['verb']),
  };
}

function parseKvDelete(raw: WireObject): KvDeleteCommand {
  const recurse = expectBoolean(raw['recurse'], 'recurse');
  const key = expectString(raw['key'], 'key');
  const casIndex = raw['casIndex'] === null ? null : expectUint64(raw['casIndex'], 'casIndex');
  assert(recurse || key.length > 0, 'a non-recursive delete needs a key');
  assert(!(recurse && casIndex !== null), 'recurse and cas conflict');
  return { type: 'kv-delete', nowMs: nowOf(raw), key, casIndex, recurse };
}

function parseTxnOp(value: unknown, position: number): TxnKvOp {
  const raw = expectObject(value, `op ${position}`);
  return {
    verb: expectString(raw['verb'], 'verb'),
    key: expectString(raw['key'], 'key'),
    value: valueOf(raw, 'op value'),
    flags: expectUint64(raw['flags'], 'op flags'),
    index: expectUint64(raw['index'], 'op index'),
    session: expectString(raw['session'], 'op session'),
  };
}

function parseTxn(raw: WireObject): TxnCommand {
  const ops = expectArray(raw['ops'], 'ops').map(parseTxnOp);
  assert(ops.length > 0, 'a txn needs ops');
  assert(ops.length <= TXN_OPS_COUNT_MAX, 'txn exceeds TXN_OPS_COUNT_MAX');
  return { type: 'txn', nowMs: nowOf(raw), ops };
}

function parseSessionCreate(raw: WireObject): SessionCreateCommand {
  const lockDelayNs = expectCount(raw['lockDelayNs'], 'lockDelayNs');
  const ttlNs = expectCount(raw['ttlNs'], 'ttlNs');
  assert(lockDelayNs <= LOCK_DELAY_MS_MAX * 1_000_000, 'lockDelayNs above the 60 s cap');
  assert(ttlNs <= SESSION_TTL_NS_MAX, 'ttlNs above 24h');
  const serviceChecks = expectArray(raw['serviceChecks'], 'serviceChecks').map((item, i) => {
    const check = expectObject(item, `serviceChecks[${i}]`);
    return { id: nonEmpty(check['id'], 'service check id'), namespace: expectString(check['namespace'], 'namespace') };
  });
  return {
    type: 'session-create',
    nowMs: nowOf(raw),
    id: nonEmpty(raw['id'], 'id'),
    name: expectString(raw['name'], 'name'),
    node: nonEmpty(raw['node'], 'node'),
    lockDelayNs,
    behavior: expectOneOf(raw['behavior'], SESSION_BEHAVIORS, 'behavior'),
    ttl: expectString(raw['ttl'], 'ttl'),
    ttlNs,
    nodeChecks: expectStringArray(raw['nodeChecks'], 'nodeChecks'),
    serviceChecks,
  };
}

function parseCheckDefinition(value: unknown, position: number): CheckDefinition {
  const raw = expectObject(value, `checks[${position}]`);
  return {
    checkId: nonEmpty(raw['checkId'], 'checkId'),
    name: expectString(raw['name'], 'name'),
    status: expectOneOf(raw['status'], HEALTH_STATUSES, 'status'),
    notes: expectString(raw['notes'], 'notes'),
    output: expectString(raw['output'], 'output'),
    serviceId: expectString(raw['serviceId'], 'serviceId'),
    serviceName: expectString(raw['serviceName'], 'serviceName'),
    serviceTags: expectStringArray(raw['serviceTags'], 'serviceTags'),
    type: expectString(raw['type'], 'type'),
    interval: expectString(raw['interval'], 'interval'),
    timeout: expectString(raw['timeout'], 'timeout'),
  };
}

function parseNodeRegister(raw: WireObject): NodeRegisterCommand {
  const checks = expectArray(raw['checks'], 'checks').map(parseCheckDefinition);
  const checkIds = new Set(checks.map((check) => check.checkId));
  assert(checkIds.size === checks.length, 'duplicate check ids in one registration');
  return {
    type: 'node-register',
    nowMs: nowOf(raw),
    node: nonEmpty(raw['node'], 'node'),
    id: expectString(raw['id'], 'id'),
    address: expectString(raw['address'], 'address'),
    datacenter: expectString(raw['datacenter'], 'datacenter'),
    taggedAddresses: expectStringRecord(raw['taggedAddresses'], 'taggedAddresses'),
    meta: expectStringRecord(raw['meta'], 'meta'),
    checks,
  };
}
