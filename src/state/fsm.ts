/**
 * The replicated state machine (Consul agent/consul/fsm): committed commands in, state and
 * results out; reads and blocking-query waits for the HTTP layer; snapshot and restore.
 *
 * Deterministic by construction: no clocks, timers, randomness or I/O; wall time comes from the
 * command (`nowMs`, the leader's clock), ids from the proposer; every multi-key effect runs in
 * sorted key order; reads never mutate. Bad user input (an invalid session, a failed CAS) is a
 * result, never an exception; a malformed command is a bug and asserts.
 *
 * Error texts: `ApplyResult.error.message` is the FSM's own text (Consul's state-store error);
 * `consulErrorText` adds the prefix Consul's endpoint adds, so HTTP can send it as is (500).
 */
import { createHash } from 'node:crypto';
import { AssertionError, assert, assertNever } from '../lib/assert.js';
import { goQuote } from './go-quote.js';
import { CatalogStore } from './catalog.js';
import type { CatalogNode, CatalogService, HealthCheck } from './catalog.js';
import { decodeCommand, parseCommand } from './commands.js';
import type { CheckDefinition, Command, CommandOf, CommandType, HealthStatus, ServiceDefinition, TxnKvOp } from './commands.js';
import { LOCK_DELAY_MS_MAX } from './limits.js';
import { KvStore } from './kv.js';
import type { KvEntry } from './kv.js';
import { SessionStore, createSession, invalidateSession, invalidateSessionsForCheck, invalidateSessionsForNode } from './sessions.js';
import type { Session } from './sessions.js';
import { decodeSnapshot, encodeSnapshot, encodeSnapshotInSteps } from './snapshot.js';
import type { StateSnapshot } from './snapshot.js';
import { applyTxn, readTxn } from './txn.js';
import type { TxnError, TxnOutcome, TxnResult } from './txn.js';
import { WatchIndex } from './watch.js';
import type { WakeReason, WatchScope } from './watch.js';
import { ChangeSet } from './write-context.js';
import type { StateStores, TableName, WriteContext } from './write-context.js';
import type { WireObject } from './wire.js';

/** The leader's check of every node's liveness (consul-api.md §6): anti-entropy never removes it. */
export const SERF_HEALTH_CHECK_ID = 'serfHealth';

/** What applying one command produced. */
export type ApplyResult =
  /** kv-set, kv-delete: Consul's `true` / `false`. */
  | { readonly kind: 'bool'; readonly value: boolean }
  /** txn: 200 with results, or 409 with errors. */
  | { readonly kind: 'txn'; readonly results: readonly TxnResult[] | null; readonly errors: readonly TxnError[] | null }
  /** session-create: `{"ID": id}`. */
  | { readonly kind: 'session'; readonly id: string }
  /** Commands without a value (session-destroy answers `true` regardless). */
  | { readonly kind: 'done' }
  /** restore-commit: the whole state was replaced by a restored snapshot. */
  | { readonly kind: 'restored' }
  /** A rejected command; see consulErrorText for the text Consul sends (HTTP 500). */
  | { readonly kind: 'error'; readonly message: string };

/**
 * The full text Consul's endpoint returns for an FSM error of a command type: KVS.Apply wraps it
 * as `raft apply failed: <err>` (Consul 1.16; older servers sent it bare, consul-api.md §4), Session.Apply as
 * `apply failed: <err>`. Other commands' errors are passed through unchanged.
 */
export function consulErrorText(type: CommandType, message: string): string {
  if (type === 'kv-set' || type === 'kv-delete') return `raft apply failed: ${message}`;
  if (type === 'session-create') return `apply failed: ${message}`;
  return message;
}

/** A read and the blocking index that goes with it (X-Consul-Index; HTTP turns 0 into 1). */
export interface IndexedRead<T> {
  readonly index: number;
  readonly value: T;
}

/** Construction options. */
export interface StateMachineOptions {
  /** Blocking queries allowed at once (default WATCH_WAITERS_MAX). */
  readonly watchWaitersMax?: number;
}

type Handler<T extends CommandType> = (stores: StateStores, context: WriteContext, command: CommandOf<T>) => ApplyResult;

const DONE: ApplyResult = { kind: 'done' };

function unreachableRestore(): ApplyResult {
  throw new AssertionError('restore commands are applied by StateMachine itself');
}

/** A snapshot restore in progress: chunks in order, committed all at once. */
export interface RestoreStaging {
  readonly restoreId: string;
  readonly totalBytes: number;
  readonly sha256: string;
  readonly chunks: Uint8Array[];
  received: number;
}

/** One handler per command type (Consul's registerCommand table); the compiler rejects a gap. */
const COMMAND_HANDLERS: { readonly [T in CommandType]: Handler<T> } = {
  'kv-set': applyKvSet,
  'kv-delete': applyKvDelete,
  txn: (stores, context, command) => ({ kind: 'txn', ...applyTxn(stores, context, command.ops, command.checkedIndex) }),
  'session-create': (stores, context, command) => {
    const error = createSession(stores, context, command);
    return error === null ? { kind: 'session', id: command.id } : { kind: 'error', message: error };
  },
  'session-destroy': (stores, context, command) => {
    invalidateSession(stores, context, command.id);
    return DONE;
  },
  'node-register': applyNodeRegister,
  'node-deregister': (stores, context, command) => {
    const removedChecks = stores.catalog.removeNode(context, command.node);
    for (const check of removedChecks ?? []) invalidateSessionsForCheck(stores, context, command.node, check.CheckID);
    invalidateSessionsForNode(stores, context, command.node);
    return DONE;
  },
  'check-update': applyCheckUpdate,
  'service-deregister': (stores, context, command) => {
    const removedChecks = stores.catalog.removeService(context, command.node, command.serviceId);
    for (const check of removedChecks ?? []) invalidateSessionsForCheck(stores, context, command.node, check.CheckID);
    return DONE;
  },
  'node-sync': applyNodeSync,
  'check-deregister': (stores, context, command) => {
    if (stores.catalog.removeCheck(context, command.node, command.checkId)) {
      invalidateSessionsForCheck(stores, context, command.node, command.checkId);
    }
    return DONE;
  },
  // Restores change the whole machine, not stores: StateMachine.#apply handles them itself.
  'restore-begin': unreachableRestore,
  'restore-chunk': unreachableRestore,
  'restore-commit': unreachableRestore,
  'tombstone-reap': (stores, context, command) => {
    stores.kv.reapTombstones(context, command.reapIndex);
    return DONE;
  },
};

/** The state machine of one server. */
export class StateMachine {
  #stores: StateStores = { kv: new KvStore(), sessions: new SessionStore(), catalog: new CatalogStore() };
  readonly #watch: WatchIndex;
  #lastAppliedIndex = 0;
  #restore: RestoreStaging | null = null;
  readonly #lockDelayListeners: ((key: string, delayMs: number) => void)[] = [];

  /** An empty state at index 0. */
  constructor(options: StateMachineOptions = {}) {
    this.#watch = new WatchIndex(options.watchWaitersMax);
  }

  /** The Raft index of the last applied command (or of the restored snapshot). */
  get lastAppliedIndex(): number {
    return this.#lastAppliedIndex;
  }

  /** Applies a committed entry's command at Raft `index` (strictly above the last applied one). */
  apply(index: number, commandBytes: Uint8Array): ApplyResult {
    return this.#apply(index, decodeCommand(commandBytes));
  }

  /** Applies a command object (validated as if decoded): for tests and in-process callers. */
  applyCommand(index: number, command: Command): ApplyResult {
    return this.#apply(index, parseCommand(command as unknown as WireObject));
  }

  /**
   * Records that a log entry without a command (a leader's no-op, a configuration change) was
   * applied at `index`, so lastAppliedIndex follows the log exactly.
   */
  applyNoop(index: number): void {
    assert(Number.isSafeInteger(index), 'a Raft index is a safe integer');
    assert(index > this.#lastAppliedIndex, `apply index ${index} after ${this.#lastAppliedIndex}`);
    this.#lastAppliedIndex = index;
  }

  #apply(index: number, command: Command): ApplyResult {
    assert(Number.isSafeInteger(index), 'a Raft index is a safe integer');
    assert(index > this.#lastAppliedIndex, `apply index ${index} after ${this.#lastAppliedIndex}`);
    if (command.type === 'restore-begin' || command.type === 'restore-chunk' || command.type === 'restore-commit') {
      const result = this.#applyRestore(command);
      this.#lastAppliedIndex = index;
      return result;
    }
    const context: WriteContext = { index, nowMs: command.nowMs, changes: new ChangeSet() };
    const handler = COMMAND_HANDLERS[command.type] as Handler<CommandType>;
    const result = handler(this.#stores, context, command);
    this.#lastAppliedIndex = index;
    this.#watch.notify(context.changes, index);
    for (const [key, delayMs] of context.changes.lockDelays) for (const listener of this.#lockDelayListeners) listener(key, delayMs);
    return result;
  }

  /**
   * Calls `listener` for every lock-delay an applied command starts (key, ms), and for the
   * lock-delays a restored snapshot holds (their remainder by this server's wall clock: the
   * snapshot only has the leader's deadline). Not replicated state: each server's own note.
   */
  onLockDelay(listener: (key: string, delayMs: number) => void): void {
    this.#lockDelayListeners.push(listener);
  }

  // ---- KV reads ----

  /** The entry under `key`. */
  getKey(key: string): KvEntry | undefined {
    return this.#stores.kv.get(key);
  }

  /** `GET /v1/kv/<key>`: the entry (or undefined → 404) and its blocking index. */
  readKey(key: string): IndexedRead<KvEntry | undefined> {
    return { index: this.#stores.kv.indexForKey(key), value: this.#stores.kv.get(key) };
  }

  /** `GET /v1/kv/<prefix>?recurse`: entries in key-byte order and the prefix index. */
  readPrefix(prefix: string): IndexedRead<KvEntry[]> {
    return { index: this.#stores.kv.indexForPrefix(prefix), value: this.#stores.kv.list(prefix) };
  }

  /** `GET /v1/kv/<prefix>?keys[&separator=]` ("" = no separator) and the prefix index. */
  readKeys(prefix: string, separator: string): IndexedRead<string[]> {
    return { index: this.#stores.kv.indexForPrefix(prefix), value: this.#stores.kv.listKeys(prefix, separator) };
  }

  /** A read-only `/v1/txn` (see txnHasWrites): evaluated locally, writes nothing. */
  readTxn(ops: readonly TxnKvOp[]): TxnOutcome {
    return readTxn(this.#stores, ops);
  }

  /** The KV-space index (the highest index of any KV change, deletes included). */
  get kvIndex(): number {
    return this.#stores.kv.index;
  }

  /** The leader-clock ms until which `key` cannot be acquired, if under lock-delay. */
  lockDelayUntil(key: string): number | undefined {
    return this.#stores.kv.lockDelayUntil(key);
  }

  // ---- sessions ----

  /** `GET /v1/session/info/<id>` (wrap in an array; [] if undefined); index: tableIndex('sessions'). */
  getSession(id: string): Session | undefined {
    return this.#stores.sessions.get(id);
  }

  /** `GET /v1/session/list`: sorted by ID. */
  listSessions(): Session[] {
    return this.#stores.sessions.list();
  }

  /** `GET /v1/session/node/<node>`: sorted by ID. */
  nodeSessions(node: string): Session[] {
    return this.#stores.sessions.forNode(node);
  }

  /** Sessions with a TTL: what the leader arms its expiry timers (2 × TTL) from. */
  sessionsWithTtl(): { readonly id: string; readonly ttlNs: number }[] {
    return this.#stores.sessions.withTtl();
  }

  // ---- catalog ----

  /** `GET /v1/catalog/node/<n>` (undefined → `null`). */
  getNode(name: string): CatalogNode | undefined {
    return this.#stores.catalog.getNode(name);
  }

  /** `GET /v1/catalog/nodes`: sorted by name. */
  listNodes(): CatalogNode[] {
    return this.#stores.catalog.listNodes();
  }

  /** `GET /v1/health/node/<n>`: sorted by CheckID. */
  nodeChecks(node: string): HealthCheck[] {
    return this.#stores.catalog.nodeChecks(node);
  }

  /** One check of a node. */
  getCheck(node: string, checkId: string): HealthCheck | undefined {
    return this.#stores.catalog.getCheck(node, checkId);
  }

  /** `GET /v1/catalog/node/<n>` services: sorted by ID. */
  nodeServices(node: string): CatalogService[] {
    return this.#stores.catalog.nodeServices(node);
  }

  /** The instances of a service, sorted by Node then ID. */
  serviceInstances(name: string): CatalogService[] {
    return this.#stores.catalog.serviceInstances(name);
  }

  /** Every service name, sorted. */
  serviceNames(): string[] {
    return this.#stores.catalog.serviceNames();
  }

  /** `GET /v1/health/state/<state>`: sorted by Node, then CheckID. */
  checksInState(state: HealthStatus | 'any'): HealthCheck[] {
    return this.#stores.catalog.checksInState(state);
  }

  // ---- indexes and blocking queries ----

  /** The index of one or more tables (the max), e.g. ('nodes') for catalog/nodes. */
  tableIndex(...tables: TableName[]): number {
    assert(tables.length > 0, 'name at least one table');
    return Math.max(...tables.map((table) => this.#tableIndexOf(table)));
  }

  /** The blocking index of a scope, by the rules of consul-api.md §3 (may be 0; HTTP sends 1). */
  indexFor(scope: WatchScope): number {
    switch (scope.kind) {
      case 'kv-key':
        return this.#stores.kv.indexForKey(scope.key);
      case 'kv-prefix':
        return this.#stores.kv.indexForPrefix(scope.prefix);
      case 'tables':
        return this.tableIndex(...scope.tables);
      default:
        return assertNever(scope, 'watch scope');
    }
  }

  /**
   * Waits until `scope`'s index exceeds `minIndex` (at once if it already does) or `signal`
   * aborts. The HTTP layer aborts at the wait timeout (≤ wait × 1.0625) and on disconnect, then
   * reads again. Rejects with OverloadedError (429) when too many queries are blocked.
   */
  waitForChange(scope: WatchScope, minIndex: number | bigint, signal?: AbortSignal): Promise<WakeReason> {
    // `?index=` is a client uint64: anything beyond a safe integer is a future index, which just
    // waits out the timeout (consul-api.md §3).
    const min = typeof minIndex === 'bigint'
      ? Number(minIndex > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : minIndex)
      : minIndex;
    return this.#watch.wait(scope, min, this.indexFor(scope), signal);
  }

  /** Blocking queries currently waiting. */
  get waiterCount(): number {
    return this.#watch.waiterCount;
  }

  // ---- snapshot ----

  /** The whole state (KV, tombstones, lock-delays, sessions, catalog, indexes), versioned. */
  /**
   * restore-begin/-chunk/-commit. Deterministic like every command: the same chunks in the same
   * order give the same staging on every server, and the staging is part of snapshots, so a
   * server that installs a Raft snapshot taken mid-restore still finishes it.
   */
  #applyRestore(command: CommandOf<'restore-begin' | 'restore-chunk' | 'restore-commit'>): ApplyResult {
    if (command.type === 'restore-begin') {
      this.#restore = { restoreId: command.restoreId, totalBytes: command.totalBytes, sha256: command.sha256, chunks: [], received: 0 };
      return DONE;
    }
    const staging = this.#restore;
    if (staging === null || staging.restoreId !== command.restoreId) return { kind: 'error', message: `no restore ${command.restoreId} in progress` };
    if (command.type === 'restore-chunk') {
      if (command.offset !== staging.received || staging.received + command.data.byteLength > staging.totalBytes) {
        return { kind: 'error', message: `restore chunk at ${command.offset} does not follow ${staging.received}` };
      }
      staging.chunks.push(command.data);
      staging.received += command.data.byteLength;
      return DONE;
    }
    this.#restore = null;
    if (staging.received !== staging.totalBytes) return { kind: 'error', message: `restore incomplete: ${staging.received} of ${staging.totalBytes} bytes` };
    const bytes = concatBytes(staging.chunks, staging.totalBytes);
    if (createHash('sha256').update(bytes).digest('hex') !== staging.sha256) return { kind: 'error', message: 'restore checksum mismatch' };
    // The proposer decoded these exact bytes (same checksum) before proposing, so this holds.
    this.restore(bytes, false);
    return { kind: 'restored' };
  }

  snapshot(): Uint8Array {
    return encodeSnapshot({ ...this.#exportAllButKv(), kv: this.#stores.kv.exportState() });
  }

  /**
   * The snapshot of the state as it is now, encoded in steps of at most `rowsPerStep` KV rows
   * (encodeSnapshotInSteps): commands may be applied between steps without changing the bytes.
   */
  snapshotInSteps(rowsPerStep: number): Generator<void, Uint8Array, void> {
    return encodeSnapshotInSteps({ ...this.#exportAllButKv(), kv: this.#stores.kv.captureState() }, rowsPerStep);
  }

  /** The state now, but for the KV table (snapshot() exports it, snapshotInSteps captures it). */
  #exportAllButKv(): Omit<StateSnapshot, 'kv'> {
    return {
      restore: this.#restore === null ? null : { restoreId: this.#restore.restoreId, totalBytes: this.#restore.totalBytes, sha256: this.#restore.sha256, data: concatBytes(this.#restore.chunks, this.#restore.received) },
      lastAppliedIndex: this.#lastAppliedIndex,
      sessions: this.#stores.sessions.exportState(),
      catalog: this.#stores.catalog.exportState(),
    };
  }

  /**
   * Replaces the whole state with a snapshot. Atomic: the new stores are built first, so a bad
   * snapshot leaves the state as it was. Wakes every blocking query (indexes may regress).
   */
  restore(bytes: Uint8Array, asSnapshot = true): void {
    const state = decodeSnapshot(bytes);
    const stores: StateStores = {
      kv: KvStore.fromState(state.kv),
      sessions: SessionStore.fromState(state.sessions),
      catalog: CatalogStore.fromState(state.catalog),
    };
    this.#stores = stores;
    const wallNow = Date.now();
    for (const [key, until] of state.kv.lockDelays) {
      const remaining = Math.min(until - wallNow, LOCK_DELAY_MS_MAX);
      if (remaining > 0) for (const listener of this.#lockDelayListeners) listener(key, remaining);
    }
    // A Raft snapshot carries our own position and any restore in progress; a user's snapshot
    // (restore-commit) only replaces the data, at the index of the commit entry.
    if (asSnapshot) {
      this.#lastAppliedIndex = state.lastAppliedIndex;
      const staging = state.restore;
      this.#restore = staging === null ? null : { restoreId: staging.restoreId, totalBytes: staging.totalBytes, sha256: staging.sha256, chunks: staging.data.byteLength > 0 ? [staging.data] : [], received: staging.data.byteLength };
    }
    this.#watch.wakeAll();
  }

  #tableIndexOf(table: TableName): number {
    switch (table) {
      case 'sessions':
        return this.#stores.sessions.index;
      case 'nodes':
        return this.#stores.catalog.nodesIndex;
      case 'services':
        return this.#stores.catalog.servicesIndex;
      case 'checks':
        return this.#stores.catalog.checksIndex;
      default:
        return assertNever(table, 'table');
    }
  }
}

function concatBytes(chunks: readonly Uint8Array[], totalBytes: number): Uint8Array {
  if (chunks.length === 1 && (chunks[0] as Uint8Array).byteLength === totalBytes) return chunks[0] as Uint8Array;
  const bytes = new Uint8Array(totalBytes);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function applyKvSet(stores: StateStores, context: WriteContext, command: CommandOf<'kv-set'>): ApplyResult {
  const { kv } = stores;
  const { key, value, flags, verb } = command;
  switch (verb.kind) {
    case 'set':
      kv.set(context, key, value, flags);
      return { kind: 'bool', value: true };
    case 'cas':
      return { kind: 'bool', value: kv.setCas(context, key, value, flags, verb.index) !== null };
    case 'acquire': {
      // Consul's leader refuses an acquire under lock-delay before proposing (kvsPreApply):
      // `false`, whatever the session. Here the leader's clock is the command's nowMs.
      const delayed = command.checkedIndex === undefined ? kv.isLockDelayed(key, context.nowMs) : kv.lockDelaySetAfter(key, command.checkedIndex);
      if (delayed) return { kind: 'bool', value: false };
      const outcome = kv.lock(context, key, value, flags, verb.session, (id) => stores.sessions.get(id) !== undefined);
      return outcome.kind === 'error' ? { kind: 'error', message: outcome.message } : { kind: 'bool', value: outcome.kind === 'ok' };
    }
    case 'release': {
      const outcome = kv.unlock(context, key, value, flags, verb.session);
      return outcome.kind === 'error' ? { kind: 'error', message: outcome.message } : { kind: 'bool', value: outcome.kind === 'ok' };
    }
    default:
      return assertNever(verb, 'kv-set verb');
  }
}

function applyKvDelete(stores: StateStores, context: WriteContext, command: CommandOf<'kv-delete'>): ApplyResult {
  if (command.recurse) {
    stores.kv.deleteTree(context, command.key);
    return { kind: 'bool', value: true };
  }
  if (command.casIndex !== null) return { kind: 'bool', value: stores.kv.deleteCas(context, command.key, command.casIndex) };
  stores.kv.delete(context, command.key);
  return { kind: 'bool', value: true };
}

/**
 * ensureCheckTxn's service lookup: a service check takes its service's name and tags; null when
 * the service is neither among `services` nor on the node (Consul's `Missing service registration`).
 */
function resolveCheck(stores: StateStores, node: string, definition: CheckDefinition,
  listed: ReadonlyMap<string, ServiceDefinition>): CheckDefinition | null {
  if (definition.serviceId === '') return { ...definition, serviceName: '', serviceTags: [] };
  const service = listed.get(definition.serviceId);
  if (service !== undefined) return { ...definition, serviceName: service.service, serviceTags: service.tags };
  const stored = stores.catalog.getService(node, definition.serviceId);
  return stored === undefined ? null : { ...definition, serviceName: stored.Service, serviceTags: stored.Tags };
}

/** Writes checks resolved by resolveCheck; a critical one invalidates the sessions that depend on it. */
function writeChecks(stores: StateStores, context: WriteContext, node: string, checks: readonly CheckDefinition[]): void {
  for (const definition of checks) {
    const check = stores.catalog.upsertCheck(context, node, definition);
    // ensureCheckTxn: a critical check invalidates the sessions that depend on it.
    if (check.Status === 'critical') invalidateSessionsForCheck(stores, context, node, check.CheckID);
  }
}

const MISSING_SERVICE: ApplyResult = { kind: 'error', message: 'Missing service registration' };

function applyNodeRegister(stores: StateStores, context: WriteContext, command: CommandOf<'node-register'>): ApplyResult {
  const listed = new Map(command.service === undefined ? [] : [[command.service.serviceId, command.service] as const]);
  // Every check is resolved before anything is written: a rejected registration changes nothing.
  const checks: CheckDefinition[] = [];
  for (const definition of command.checks) {
    const resolved = resolveCheck(stores, command.node, definition, listed);
    if (resolved === null) return MISSING_SERVICE;
    checks.push(resolved);
  }
  stores.catalog.upsertNode(context, {
    ID: command.id,
    Node: command.node,
    Address: command.address,
    Datacenter: command.datacenter,
    TaggedAddresses: command.taggedAddresses,
    Meta: command.meta,
  });
  if (command.service !== undefined) stores.catalog.upsertService(context, command.node, command.service);
  writeChecks(stores, context, command.node, checks);
  return DONE;
}

/** Anti-entropy: the node ends up with exactly the listed services and checks (serfHealth kept). */
function applyNodeSync(stores: StateStores, context: WriteContext, command: CommandOf<'node-sync'>): ApplyResult {
  const { catalog } = stores;
  const { node } = command;
  if (catalog.getNode(node) === undefined) return { kind: 'error', message: 'Missing node registration' };
  const listed = new Map(command.services.map((service) => [service.serviceId, service] as const));
  const checks: CheckDefinition[] = [];
  for (const definition of command.checks) {
    const service = definition.serviceId === '' ? null : listed.get(definition.serviceId);
    if (service === undefined) return { kind: 'error', message: `Check ${goQuote(definition.checkId)} names service ${goQuote(definition.serviceId)}, which is not synced` };
    checks.push(service === null ? { ...definition, serviceName: '', serviceTags: [] }
      : { ...definition, serviceName: service.service, serviceTags: service.tags });
  }
  const keptChecks = new Set([SERF_HEALTH_CHECK_ID, ...checks.map((check) => check.checkId)]);
  for (const service of catalog.nodeServices(node)) {
    if (listed.has(service.ID)) continue;
    for (const check of catalog.removeService(context, node, service.ID) ?? []) invalidateSessionsForCheck(stores, context, node, check.CheckID);
  }
  for (const check of catalog.nodeChecks(node)) {
    if (keptChecks.has(check.CheckID)) continue;
    if (catalog.removeCheck(context, node, check.CheckID)) invalidateSessionsForCheck(stores, context, node, check.CheckID);
  }
  for (const service of command.services) catalog.upsertService(context, node, service);
  writeChecks(stores, context, node, checks);
  return DONE;
}

function applyCheckUpdate(stores: StateStores, context: WriteContext, command: CommandOf<'check-update'>): ApplyResult {
  if (stores.catalog.getNode(command.node) === undefined) return { kind: 'error', message: 'Missing node registration' };
  const check = stores.catalog.updateCheck(context, command.node, command.checkId, command.status, command.output);
  if (check === undefined) {
    return { kind: 'error', message: `check ${goQuote(command.checkId)} on node ${goQuote(command.node)} doesn't exist` };
  }
  if (check.Status === 'critical') invalidateSessionsForCheck(stores, context, command.node, command.checkId);
  return DONE;
}
