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
import { BadRequestError } from '../lib/errors.js';
import { AssertionError, assert, assertNever } from '../lib/assert.js';
import { COMMAND_BYTES_MAX, KV_VALUE_BYTES_MAX, LOCK_DELAY_MS_MAX, SERVICE_PORT_MAX, SESSION_TTL_NS_MAX, TXN_OPS_COUNT_MAX, RESTORE_BYTES_MAX, RESTORE_CHUNK_BYTES_MAX } from './limits.js';
import { MsgpackReader } from './msgpack-reader.js';
import { MsgpackWriter, UINT64_BYTES, bytesOrNullBytes, countBytes, encodedString, mapHeaderBytes, stringBytes } from './msgpack-writer.js';
import type { WireObject } from './wire.js';
import {
  ByteSlab,
  copyBytes,
  copyBytesTogether,
  expectArray,
  expectBoolean,
  expectBytesOrNull,
  expectBytesViewOrNull,
  expectCount,
  expectObject,
  expectOneOf,
  expectString,
  expectStringArray,
  expectStringRecord,
  expectUint64,
  flatString,
  statePackr,
  stateUnpackr,
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
  /** Acquires: see LockCheckedIndex. */
  readonly checkedIndex?: number;
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
  /** Transactions with lock operations: see LockCheckedIndex. */
  readonly checkedIndex?: number;
}

/**
 * `checkedIndex` of an acquire (kv-set or txn lock): the applied index at which the proposing
 * leader checked lock-delay on its own monotonic clock. The state machine then refuses the
 * acquire only for a lock-delay set by a later entry (one the check could not see), on every
 * server alike. Absent (entries written before it existed): the lock-delay deadline, from the
 * leader's wall clock, is compared with the command's nowMs.
 */
export type LockCheckedIndex = number;

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

/** Service weights (Consul's `Weights`): DNS SRV weight when passing, and when warning. */
export interface ServiceWeights {
  readonly passing: number;
  readonly warning: number;
}

/** A service instance on a node, as registered (Consul's NodeService, minus indexes). */
export interface ServiceDefinition {
  /** Unique on its node. */
  readonly serviceId: string;
  /** The service name (Consul's `Service`). */
  readonly service: string;
  readonly tags: readonly string[];
  /** "" = the node's address. */
  readonly address: string;
  readonly meta: Readonly<Record<string, string>>;
  readonly port: number;
  readonly weights: ServiceWeights;
  readonly enableTagOverride: boolean;
}

/**
 * Upserts a catalog node and the given checks (checks not listed are kept, as with Consul's
 * catalog register), and the service when one is given (`/v1/catalog/register` with a Service).
 * A check naming a ServiceID must name this service or one the node already has; it takes that
 * service's name and tags. Nothing is written when a check names an unknown service (result
 * `error`, Consul's `Missing service registration`). A check registered as critical invalidates
 * the sessions that depend on it. Result: `done` or `error`.
 *
 * `service` is optional so that entries written before services existed decode unchanged.
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
  readonly service?: ServiceDefinition;
  readonly checks: readonly CheckDefinition[];
}

/**
 * Removes one service of a node and its checks (`/v1/catalog/deregister` with a ServiceID);
 * sessions depending on those checks are invalidated. An unknown node or service is a no-op.
 * Result: `done`.
 */
export interface ServiceDeregisterCommand {
  readonly type: 'service-deregister';
  readonly nowMs: number;
  readonly node: string;
  readonly serviceId: string;
}

/**
 * Anti-entropy (Consul's agent/local State.SyncFull): the leader writes what an agent reported as
 * its services and checks. Afterwards the node has exactly `services` and, besides `serfHealth`
 * (the leader's own check), exactly `checks`: anything else on the node is removed. Service
 * checks take their service's name and tags. Unchanged rows keep their ModifyIndex. A removed
 * check, or one now critical, invalidates the sessions that depend on it.
 * Result: `done`, or `error` (`Missing node registration`; a check of an unlisted service).
 */
export interface NodeSyncCommand {
  readonly type: 'node-sync';
  readonly nowMs: number;
  readonly node: string;
  readonly services: readonly ServiceDefinition[];
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

/**
 * A snapshot restore (`PUT /v1/snapshot`) travels through the log in pieces, since a whole state
 * is far larger than one entry: `restore-begin` opens a staging area, `restore-chunk`s fill it in
 * order, and `restore-commit` replaces the whole state with it atomically — on every server at
 * the same index. A newer begin discards an unfinished restore. Results: `done`, `restored`, or
 * `error` for a chunk or commit that does not match the staging area.
 */
export interface RestoreBeginCommand {
  readonly type: 'restore-begin';
  readonly nowMs: number;
  readonly restoreId: string;
  readonly totalBytes: number;
  /** SHA-256 (hex) of the whole state the chunks add up to; checked at commit. */
  readonly sha256: string;
}

export interface RestoreChunkCommand {
  readonly type: 'restore-chunk';
  readonly nowMs: number;
  readonly restoreId: string;
  readonly offset: number;
  readonly data: Uint8Array;
}

export interface RestoreCommitCommand {
  readonly type: 'restore-commit';
  readonly nowMs: number;
  readonly restoreId: string;
}

/** Every command the FSM applies. */
export type Command =
  | RestoreBeginCommand
  | RestoreChunkCommand
  | RestoreCommitCommand
  | KvSetCommand
  | KvDeleteCommand
  | TxnCommand
  | SessionCreateCommand
  | SessionDestroyCommand
  | NodeRegisterCommand
  | NodeDeregisterCommand
  | CheckUpdateCommand
  | CheckDeregisterCommand
  | ServiceDeregisterCommand
  | NodeSyncCommand
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
  'service-deregister': (raw) => ({
    type: 'service-deregister',
    nowMs: nowOf(raw),
    node: nonEmpty(raw['node'], 'node'),
    serviceId: nonEmpty(raw['serviceId'], 'serviceId'),
  }),
  'node-sync': parseNodeSync,
  'tombstone-reap': (raw) => ({ type: 'tombstone-reap', nowMs: nowOf(raw), reapIndex: expectCount(raw['reapIndex'], 'reapIndex') }),
  'restore-begin': (raw) => {
    const totalBytes = expectCount(raw['totalBytes'], 'totalBytes');
    assert(totalBytes > 0 && totalBytes <= RESTORE_BYTES_MAX, 'restore size within RESTORE_BYTES_MAX');
    const sha256 = expectString(raw['sha256'], 'sha256');
    assert(/^[0-9a-f]{64}$/.test(sha256), 'sha256 is 64 hex digits');
    return { type: 'restore-begin', nowMs: nowOf(raw), restoreId: nonEmpty(raw['restoreId'], 'restoreId'), totalBytes, sha256 };
  },
  'restore-chunk': (raw) => {
    const data = expectBytesOrNull(raw['data'], 'data');
    assert(data !== null && data.byteLength > 0 && data.byteLength <= RESTORE_CHUNK_BYTES_MAX, 'restore chunk of 1..RESTORE_CHUNK_BYTES_MAX bytes');
    return { type: 'restore-chunk', nowMs: nowOf(raw), restoreId: nonEmpty(raw['restoreId'], 'restoreId'), offset: expectCount(raw['offset'], 'offset'), data };
  },
  'restore-commit': (raw) => ({ type: 'restore-commit', nowMs: nowOf(raw), restoreId: nonEmpty(raw['restoreId'], 'restoreId') }),
};

/** Every command type, in a stable order. */
export const COMMAND_TYPES = Object.keys(COMMAND_PARSERS) as CommandType[];

/**
 * Validates a command (asserting: a malformed command is a bug in the proposer) and encodes it.
 * The encoded form round-trips through `decodeCommand` to an equal command.
 */
export function encodeCommand(command: Command): Uint8Array {
  const checked = parseCommand(command as unknown as WireObject);
  if (checked.type === 'kv-set') return writeKvSetCommand(checked);
  // A copy: msgpackr returns a view into its shared output buffer.
  const bytes = new Uint8Array(statePackr.pack(checked));
  if (bytes.byteLength > COMMAND_BYTES_MAX) throw new AssertionError(`command of ${bytes.byteLength} bytes exceeds COMMAND_BYTES_MAX`);
  return bytes;
}

/**
 * Where encoded kv-sets live: a fresh ArrayBuffer per command cost more than writing it. An
 * encoded command lives as long as its entry in the in-memory Raft log (until a snapshot compacts
 * it), and entries are compacted in order, so a slab is freed soon after its last command.
 */
const commandSlab = new ByteSlab(64 * 1024);

/**
 * A kv-set (every `PUT /v1/kv/<key>`) written field by field, byte for byte what msgpackr writes
 * for the parsed command (commands.test.ts compares them): msgpackr's general encoder plus the
 * copy out of its shared buffer were ~8 % of a busy single server's CPU.
 */
function writeKvSetCommand(command: KvSetCommand): Uint8Array {
  const { verb, checkedIndex } = command;
  const fieldCount = checkedIndex === undefined ? 6 : 7;
  const verbName = KV_SET_NAMES[verb.kind];
  const verbBytes = (verb.kind === 'set' ? 0 : verb.kind === 'cas' ? KV_SET_NAMES.index.byteLength + UINT64_BYTES : KV_SET_NAMES.session.byteLength + stringBytes(verb.session));
  const byteCount = mapHeaderBytes(fieldCount) + KV_SET_HEAD.byteLength + countBytes(command.nowMs)
    + KV_SET_NAMES.key.byteLength + stringBytes(command.key)
    + KV_SET_NAMES.value.byteLength + bytesOrNullBytes(command.value)
    + KV_SET_NAMES.flags.byteLength + UINT64_BYTES
    + KV_SET_NAMES.verb.byteLength + 1 + KV_SET_NAMES.kind.byteLength + verbName.byteLength + verbBytes
    + (checkedIndex === undefined ? 0 : KV_SET_NAMES.checkedIndex.byteLength + countBytes(checkedIndex));
  // Refused before allocating (a key or value far over the limits is a bug in the proposer).
  if (byteCount > COMMAND_BYTES_MAX) throw new AssertionError(`command of ${byteCount} bytes exceeds COMMAND_BYTES_MAX`);
  const bytes = commandSlab.allocate(byteCount);
  const writer = new MsgpackWriter(bytes);
  writer.mapHeader(fieldCount);
  writer.encoded(KV_SET_HEAD);
  writer.count(command.nowMs);
  writer.encoded(KV_SET_NAMES.key);
  writer.string(command.key);
  writer.encoded(KV_SET_NAMES.value);
  writer.bytesOrNull(command.value);
  writer.encoded(KV_SET_NAMES.flags);
  writer.uint64(command.flags);
  writer.encoded(KV_SET_NAMES.verb);
  writer.mapHeader(verb.kind === 'set' ? 1 : 2);
  writer.encoded(KV_SET_NAMES.kind);
  writer.encoded(verbName);
  if (verb.kind === 'cas') {
    writer.encoded(KV_SET_NAMES.index);
    writer.uint64(verb.index);
  } else if (verb.kind !== 'set') {
    writer.encoded(KV_SET_NAMES.session);
    writer.string(verb.session);
  }
  if (checkedIndex !== undefined) {
    writer.encoded(KV_SET_NAMES.checkedIndex);
    writer.count(checkedIndex);
  }
  writer.assertFull();
  return bytes;
}

/** The constant strings of a kv-set, encoded once. */
const KV_SET_NAMES = Object.fromEntries(
  ['key', 'value', 'flags', 'verb', 'kind', 'set', 'cas', 'acquire', 'release', 'index', 'session', 'checkedIndex'].map((name) => [name, encodedString(name)]),
) as Readonly<Record<'key' | 'value' | 'flags' | 'verb' | 'kind' | 'index' | 'session' | 'checkedIndex' | KvSetVerb['kind'], Uint8Array>>;

/** `type`, `kv-set`, `nowMs`: the first field and the name of the second. */
const KV_SET_HEAD = Uint8Array.from([...encodedString('type'), ...encodedString('kv-set'), ...encodedString('nowMs')]);

/**
 * Decodes a command that arrived from another agent (a forwarded write), before it is proposed.
 * The field checks assert because a committed entry that fails them is corruption; here they
 * validate untrusted bytes, so their failure is the sender's error: a BadRequestError, never a
 * crash (RELIABILITY.md P8) — and a malformed command never reaches the log, where every server
 * would assert on it.
 */
export function decodeUntrustedCommand(bytes: Uint8Array): Command {
  try {
    return decodeCommand(bytes);
  } catch (error) {
    throw new BadRequestError(`malformed command: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Decodes and validates a command from a committed entry; anything malformed asserts. The result
 * shares no memory with `bytes` (see detachCommand), which may be a view into a transport frame.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  assert(bytes.byteLength > 0, 'empty command');
  assert(bytes.byteLength <= COMMAND_BYTES_MAX, 'command exceeds COMMAND_BYTES_MAX');
  return readCommandFieldByField(bytes) ?? detachCommand(parseCommand(expectObject(stateUnpackr.unpack(bytes), 'command')));
}

/**
 * A txn or kv-set command read field by field (MsgpackReader), or null when `bytes` is anything
 * but one of them exactly as encodeCommand writes it: a map whose fields come in the order the
 * parser builds them (type first, checkedIndex last and only when present). These two carry
 * every KV write (a restart replays thousands of them): msgpackr, the parser and detachCommand
 * made several objects, strings and slices per command (~1 µs per txn op; ~9 % of a busy single
 * server's CPU for kv-set). Every field gets its parser's check under the same name; a declined
 * command takes the general path, which decides as before. Exported for the tests that hold it
 * to that path.
 */
export function readCommandFieldByField(bytes: Uint8Array): TxnCommand | KvSetCommand | null {
  const reader = new MsgpackReader(bytes);
  const fieldCount = reader.peekType();
  if (fieldCount === undefined || fieldCount < 0x83 || fieldCount > 0x87) return null; // a fixmap of 3 to 7 fields
  reader.mapHeader('command');
  if (!reader.isNext('type')) return null;
  const isTxn = reader.isNext('txn');
  if (!isTxn && !reader.isNext('kv-set')) return null;
  // txn: type, nowMs, ops; kv-set: type, nowMs, key, value, flags, verb; either may end with checkedIndex.
  const fields = fieldCount & 0x0f;
  const required = isTxn ? 3 : 6;
  if ((fields !== required && fields !== required + 1) || !reader.isNext('nowMs')) return null;
  const hasCheckedIndex = fields === required + 1;
  const nowMs = reader.count('nowMs');
  return isTxn ? readTxnFields(reader, nowMs, hasCheckedIndex) : readKvSetFields(reader, nowMs, hasCheckedIndex);
}

/** The fields of a txn after its nowMs: ops and maybe checkedIndex. */
function readTxnFields(reader: MsgpackReader, nowMs: number, hasCheckedIndex: boolean): TxnCommand | null {
  if (!reader.isNext('ops')) return null;
  const ops = readTxnOps(reader);
  if (ops === null) return null;
  const checkedIndex = readCommandEnd(reader, hasCheckedIndex);
  if (checkedIndex === null) return null;
  const values = copyBytesTogether(ops.map((op) => op.value));
  const detached = ops.map((op, i): TxnKvOp => ({
    verb: op.verb, key: op.key, value: values[i] ?? null, flags: op.flags, index: op.index, session: op.session,
  }));
  return checkedIndex === undefined ? { type: 'txn', nowMs, ops: detached } : { type: 'txn', nowMs, ops: detached, checkedIndex };
}

/** The fields of a kv-set after its nowMs: key, value, flags, verb and maybe checkedIndex (parseKvSet's checks). */
function readKvSetFields(reader: MsgpackReader, nowMs: number, hasCheckedIndex: boolean): KvSetCommand | null {
  if (!reader.isNext('key')) return null;
  const key = reader.string('key');
  if (key.length === 0) throw new AssertionError('key must not be empty');
  if (!reader.isNext('value')) return null;
  const value = kvValue(reader.bytesViewOrNull('value'), 'value');
  if (!reader.isNext('flags')) return null;
  const flags = reader.uint64('flags');
  if (!reader.isNext('verb')) return null;
  const verb = readKvSetVerb(reader);
  if (verb === null) return null;
  const checkedIndex = readCommandEnd(reader, hasCheckedIndex);
  if (checkedIndex === null) return null;
  const kept = value === null ? null : copyBytes(value);
  return checkedIndex === undefined
    ? { type: 'kv-set', nowMs, key, value: kept, flags, verb }
    : { type: 'kv-set', nowMs, key, value: kept, flags, verb, checkedIndex };
}

/** A kv-set's verb map ({kind} or {kind, index|session}), or null to decline any other shape. */
function readKvSetVerb(reader: MsgpackReader): KvSetVerb | null {
  const fieldCount = reader.peekType();
  if (fieldCount !== 0x81 && fieldCount !== 0x82) return null;
  reader.mapHeader('verb');
  if (!reader.isNext('kind')) return null;
  if (reader.isNext('set')) return fieldCount === 0x81 ? { kind: 'set' } : null;
  if (fieldCount !== 0x82) return null;
  if (reader.isNext('cas')) return reader.isNext('index') ? { kind: 'cas', index: reader.uint64('cas index') } : null;
  for (const kind of ['acquire', 'release'] as const) {
    if (reader.isNext(kind)) return reader.isNext('session') ? { kind, session: reader.string('session') } : null;
  }
  return null;
}

/**
 * The end of a command: its checkedIndex (undefined when it has none), or null to decline a
 * missing checkedIndex or bytes left over.
 */
function readCommandEnd(reader: MsgpackReader, hasCheckedIndex: boolean): number | undefined | null {
  let checkedIndex: number | undefined;
  if (hasCheckedIndex) {
    if (!reader.isNext('checkedIndex')) return null;
    checkedIndex = reader.count('checkedIndex');
  }
  return reader.isAtEnd ? checkedIndex : null;
}

/** The ops of a txn (values still views into the command's bytes), or null to decline. */
function readTxnOps(reader: MsgpackReader): TxnKvOp[] | null {
  const arrayType = reader.peekType();
  if (arrayType === undefined || !((arrayType >= 0x91 && arrayType <= 0x9f) || arrayType === 0xdc)) return null;
  const count = reader.arrayHeader('ops');
  if (count > TXN_OPS_COUNT_MAX) return null;
  const ops: TxnKvOp[] = [];
  for (let position = 0; position < count; position++) {
    if (reader.peekType() !== 0x86) return null; // a fixmap of the 6 op fields
    reader.mapHeader(`op ${position}`);
    if (!reader.isNext('verb')) return null;
    const verb = reader.string('verb');
    if (!reader.isNext('key')) return null;
    const key = reader.string('key');
    if (!reader.isNext('value')) return null;
    const value = kvValue(reader.bytesViewOrNull('op value'), 'op value');
    if (!reader.isNext('flags')) return null;
    const flags = reader.uint64('op flags');
    if (!reader.isNext('index')) return null;
    const index = reader.uint64('op index');
    if (!reader.isNext('session')) return null;
    ops.push({ verb, key, value, flags, index, session: reader.string('op session') });
  }
  assert(ops.length > 0, 'a txn needs ops');
  return ops;
}

/**
 * The KV values of a freshly decoded command are views into its bytes (valueOf); the KV store
 * keeps them, so they are copied out here: a kv-set's value into a buffer of its own, a txn's
 * values together into one (copyBytesTogether: one ArrayBuffer per command, not per value).
 * KV keys, kept as long as their entries or tombstones, are flattened (flatString). Every other
 * byte string a parser reads (restore chunks) is copied by expectBytesOrNull already.
 */
function detachCommand(command: Command): Command {
  if (command.type === 'kv-set') {
    return { ...command, key: flatString(command.key), value: command.value === null ? null : copyBytes(command.value) };
  }
  if (command.type === 'kv-delete') return { ...command, key: flatString(command.key) }; // kept by its tombstone
  if (command.type !== 'txn') return command;
  const values = copyBytesTogether(command.ops.map((op) => op.value));
  const ops = command.ops.map((op, i): TxnKvOp => ({
    verb: op.verb, key: flatString(op.key), value: values[i] ?? null, flags: op.flags, index: op.index, session: op.session,
  }));
  return { ...command, ops };
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

/** A KV value: a view into the decoded bytes, copied out by detachCommand. */
function valueOf(raw: WireObject, what: string): Uint8Array | null {
  return kvValue(expectBytesViewOrNull(raw['value'], what), what);
}

/** A KV value's size check; empty is stored as null (Consul's `"Value":null`). */
function kvValue(value: Uint8Array | null, what: string): Uint8Array | null {
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
    ...checkedIndexOf(raw),
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
  return { type: 'txn', nowMs: nowOf(raw), ops, ...checkedIndexOf(raw) };
}

function checkedIndexOf(raw: WireObject): { checkedIndex?: number } {
  return raw['checkedIndex'] === undefined ? {} : { checkedIndex: expectCount(raw['checkedIndex'], 'checkedIndex') };
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

function parseChecks(value: unknown): CheckDefinition[] {
  const checks = expectArray(value, 'checks').map(parseCheckDefinition);
  const checkIds = new Set(checks.map((check) => check.checkId));
  assert(checkIds.size === checks.length, 'duplicate check ids in one registration');
  return checks;
}

function parseServiceDefinition(value: unknown, what: string): ServiceDefinition {
  const raw = expectObject(value, what);
  const weights = expectObject(raw['weights'], `${what}.weights`);
  const port = expectCount(raw['port'], `${what}.port`);
  assert(port <= SERVICE_PORT_MAX, `${what}.port above 65535`);
  return {
    serviceId: nonEmpty(raw['serviceId'], `${what}.serviceId`),
    service: nonEmpty(raw['service'], `${what}.service`),
    tags: expectStringArray(raw['tags'], `${what}.tags`),
    address: expectString(raw['address'], `${what}.address`),
    meta: expectStringRecord(raw['meta'], `${what}.meta`),
    port,
    weights: { passing: expectCount(weights['passing'], 'weights.passing'), warning: expectCount(weights['warning'], 'weights.warning') },
    enableTagOverride: expectBoolean(raw['enableTagOverride'], `${what}.enableTagOverride`),
  };
}

function parseNodeRegister(raw: WireObject): NodeRegisterCommand {
  const command: NodeRegisterCommand = {
    type: 'node-register',
    nowMs: nowOf(raw),
    node: nonEmpty(raw['node'], 'node'),
    id: expectString(raw['id'], 'id'),
    address: expectString(raw['address'], 'address'),
    datacenter: expectString(raw['datacenter'], 'datacenter'),
    taggedAddresses: expectStringRecord(raw['taggedAddresses'], 'taggedAddresses'),
    meta: expectStringRecord(raw['meta'], 'meta'),
    checks: parseChecks(raw['checks']),
  };
  // Entries from before services existed have no `service`; a present one must be well-formed.
  const service = raw['service'];
  return service === undefined || service === null ? command : { ...command, service: parseServiceDefinition(service, 'service') };
}

function parseNodeSync(raw: WireObject): NodeSyncCommand {
  const services = expectArray(raw['services'], 'services').map((item, i) => parseServiceDefinition(item, `services[${i}]`));
  const serviceIds = new Set(services.map((service) => service.serviceId));
  assert(serviceIds.size === services.length, 'duplicate service ids in one sync');
  return { type: 'node-sync', nowMs: nowOf(raw), node: nonEmpty(raw['node'], 'node'), services, checks: parseChecks(raw['checks']) };
}
