/**
 * Sessions (Consul agent/consul/state/session.go): creation validated against the catalog, and
 * invalidation — on destroy, TTL expiry (proposed by the leader as `session-destroy`), a check
 * turning critical or being deregistered, or the node going away — which releases or deletes the
 * keys the session holds and puts each under lock-delay.
 *
 * TTL timers are not here: the leader runs them (2 × TTL after create or the last renew) and
 * proposes `session-destroy`. `SessionStore.withTtl()` is what it (re)arms them from.
 */
import { assert } from '../lib/assert.js';
import type { SessionBehavior, SessionCreateCommand } from './commands.js';
import { LOCK_DELAY_MS_MAX } from './limits.js';
import { OrderedMap, compareKeys } from './ordered-map.js';
import type { StateStores, WriteContext } from './write-context.js';

/** A session, with Consul's JSON field names (consul-api.md §6). */
export interface Session {
  readonly ID: string;
  readonly Name: string;
  readonly Node: string;
  /** Nanoseconds, as Consul's JSON has it. */
  readonly LockDelay: number;
  readonly Behavior: SessionBehavior;
  /** Echoed exactly as given ("" = none). */
  readonly TTL: string;
  readonly NodeChecks: readonly string[];
  /** null when there are none (Consul's JSON). */
  readonly ServiceChecks: readonly { readonly ID: string; readonly Namespace: string }[] | null;
  readonly CreateIndex: number;
  readonly ModifyIndex: number;
}

/** A session and its parsed TTL (not part of Consul's JSON). */
export interface StoredSession {
  readonly session: Session;
  /** 0 = no TTL. */
  readonly ttlNs: number;
}

/** The sessions part of a snapshot: sorted by ID. */
export interface SessionSnapshot {
  readonly index: number;
  readonly sessions: readonly StoredSession[];
}

/** The sessions table with its node and check indexes. */
export class SessionStore {
  readonly #sessions = new OrderedMap<StoredSession>();
  readonly #byNode = new Map<string, Set<string>>();
  /** node → checkId → session ids (Consul's `session_checks` table). */
  readonly #byCheck = new Map<string, Map<string, Set<string>>>();
  #index = 0;

  /** The `sessions` table index. */
  get index(): number {
    return this.#index;
  }

  /** The session `id`. */
  get(id: string): Session | undefined {
    return this.#sessions.get(id)?.session;
  }

  /** Every session, sorted by ID. */
  list(): Session[] {
    return [...this.#sessions.entries()].map(([, stored]) => stored.session);
  }

  /** The sessions of one node, sorted by ID. */
  forNode(node: string): Session[] {
    return this.#idsOf(this.#byNode.get(node)).map((id) => this.#sessions.get(id)?.session as Session);
  }

  /** Sessions with a TTL, sorted by ID: what a new leader arms its timers from (at 2 × TTL). */
  withTtl(): { readonly id: string; readonly ttlNs: number }[] {
    const result: { id: string; ttlNs: number }[] = [];
    for (const [id, stored] of this.#sessions.entries()) if (stored.ttlNs > 0) result.push({ id, ttlNs: stored.ttlNs });
    return result;
  }

  /** Ids of the sessions depending on a check, sorted. */
  idsForCheck(node: string, checkId: string): string[] {
    return this.#idsOf(this.#byCheck.get(node)?.get(checkId));
  }

  /** Ids of the sessions of a node, sorted. */
  idsForNode(node: string): string[] {
    return this.#idsOf(this.#byNode.get(node));
  }

  /** Inserts a validated session. */
  insert(context: WriteContext, stored: StoredSession): void {
    const { session } = stored;
    assert(!this.#sessions.has(session.ID), 'session ids are unique');
    this.#sessions.set(session.ID, stored);
    this.#link(stored);
    this.#index = context.index;
    context.changes.tables.add('sessions');
  }

  /** Removes a session; returns it, or undefined if unknown. */
  remove(context: WriteContext, id: string): StoredSession | undefined {
    const stored = this.#sessions.get(id);
    if (stored === undefined) return undefined;
    this.#sessions.delete(id);
    const { session } = stored;
    removeFrom(this.#byNode, session.Node, id);
    const checks = this.#byCheck.get(session.Node);
    for (const checkId of checkIdsOf(session)) if (checks !== undefined) removeFrom(checks, checkId, id);
    if (checks?.size === 0) this.#byCheck.delete(session.Node);
    this.#index = context.index;
    context.changes.tables.add('sessions');
    return stored;
  }

  /** The whole table, sorted (snapshot). */
  exportState(): SessionSnapshot {
    return { index: this.#index, sessions: [...this.#sessions.entries()].map(([, stored]) => stored) };
  }

  /** Rebuilds the table and its indexes from validated snapshot rows. */
  static fromState(state: SessionSnapshot): SessionStore {
    const store = new SessionStore();
    for (const stored of state.sessions) {
      store.#sessions.set(stored.session.ID, stored);
      store.#link(stored);
    }
    store.#index = state.index;
    return store;
  }

  #link(stored: StoredSession): void {
    const { session } = stored;
    addTo(this.#byNode, session.Node, session.ID);
    let checks = this.#byCheck.get(session.Node);
    if (checks === undefined) this.#byCheck.set(session.Node, (checks = new Map()));
    for (const checkId of checkIdsOf(session)) addTo(checks, checkId, session.ID);
    if (checks.size === 0) this.#byCheck.delete(session.Node);
  }

  #idsOf(ids: Set<string> | undefined): string[] {
    return [...(ids ?? [])].sort(compareKeys);
  }
}

/** Consul's Session.CheckIDs(): node checks, then service checks. */
export function checkIdsOf(session: Session): string[] {
  return [...session.NodeChecks, ...(session.ServiceChecks ?? []).map((check) => check.ID)];
}

/**
 * sessionCreateTxn: the node must exist, and each check must exist on it and not be critical.
 * Returns Consul's error text (without the `apply failed: ` prefix the endpoint adds), or null.
 */
export function createSession(stores: StateStores, context: WriteContext, command: SessionCreateCommand): string | null {
  if (stores.catalog.getNode(command.node) === undefined) return 'Missing node registration';
  const session: Session = Object.freeze({
    ID: command.id,
    Name: command.name,
    Node: command.node,
    LockDelay: command.lockDelayNs,
    Behavior: command.behavior,
    TTL: command.ttl,
    NodeChecks: [...command.nodeChecks],
    ServiceChecks: command.serviceChecks.length === 0 ? null
      : command.serviceChecks.map((check) => ({ ID: check.id, Namespace: check.namespace })),
    CreateIndex: context.index,
    ModifyIndex: context.index,
  });
  for (const checkId of checkIdsOf(session)) {
    const check = stores.catalog.getCheck(command.node, checkId);
    if (check === undefined) return `Missing check '${checkId}' registration`;
    if (check.Status === 'critical') return `Check '${checkId}' is in critical state`;
  }
  // The proposer generates UUIDs; a clash is astronomically unlikely but must not orphan locks.
  if (stores.sessions.get(command.id) !== undefined) return `Session ID '${command.id}' already exists`;
  stores.sessions.insert(context, { session, ttlNs: command.ttlNs });
  return null;
}

/**
 * deleteSessionTxn: removes the session, then releases (Behavior `release`: Session cleared,
 * ModifyIndex moves) or deletes (Behavior `delete`) every key it holds, and puts each under
 * lock-delay until nowMs + min(LockDelay, 60 s). An unknown id is a no-op (destroy answers true).
 */
export function invalidateSession(stores: StateStores, context: WriteContext, id: string): void {
  const stored = stores.sessions.remove(context, id);
  if (stored === undefined) return;
  const { session } = stored;
  // Rounded up to whole ms: a sub-ms delay ("500us") must not become none (P4).
  const delayMs = Math.min(Math.ceil(session.LockDelay / 1_000_000), LOCK_DELAY_MS_MAX);
  for (const key of stores.kv.keysHeldBy(id)) {
    if (session.Behavior === 'release') stores.kv.clearSession(context, key);
    else stores.kv.delete(context, key);
    // Consul applies a lock-delay only when it is > 0.
    if (delayMs > 0) {
      stores.kv.setLockDelay(key, context.nowMs + delayMs, context.nowMs, context.index);
      context.changes.lockDelays.push([key, delayMs]);
    }
  }
  assert(stores.kv.keysHeldBy(id).length === 0, 'an invalidated session holds no key');
}

/** Invalidates the sessions that depend on a check (it went critical or was deregistered). */
export function invalidateSessionsForCheck(stores: StateStores, context: WriteContext, node: string, checkId: string): void {
  for (const id of stores.sessions.idsForCheck(node, checkId)) invalidateSession(stores, context, id);
}

/** Invalidates every session of a node (it was deregistered). */
export function invalidateSessionsForNode(stores: StateStores, context: WriteContext, node: string): void {
  for (const id of stores.sessions.idsForNode(node)) invalidateSession(stores, context, id);
}

function addTo(map: Map<string, Set<string>>, key: string, id: string): void {
  let ids = map.get(key);
  if (ids === undefined) map.set(key, (ids = new Set()));
  ids.add(id);
}

function removeFrom(map: Map<string, Set<string>>, key: string, id: string): void {
  const ids = map.get(key);
  ids?.delete(id);
  if (ids?.size === 0) map.delete(key);
}
