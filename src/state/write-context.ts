/**
 * What every write of the state machine is given: its place in the log, the leader's clock, and
 * a change set for the watch index. Shared by the KV, session and catalog stores.
 */
import type { CatalogStore } from './catalog.js';
import type { KvStore } from './kv.js';
import type { SessionStore } from './sessions.js';

/** Tables with one index each, watched as a whole (Consul's table indexes). */
export type TableName = 'sessions' | 'nodes' | 'services' | 'checks';

/** What one applied command changed; the watch index is notified only once the command succeeded. */
export class ChangeSet {
  /** Every KV key written or removed (possibly repeated). */
  readonly keys: string[] = [];
  /** Every table whose index moved. */
  readonly tables = new Set<TableName>();
  /**
   * Lock-delays this write started, [key, ms]: each server also notes them on its own monotonic
   * clock (not replicated), which is what its leader checks before proposing an acquire.
   */
  readonly lockDelays: [string, number][] = [];

  /** True when nothing changed (a no-op PUT, a failed CAS, ...). */
  isEmpty(): boolean {
    return this.keys.length === 0 && this.tables.size === 0;
  }

  /** Adds another change set's changes (a transaction's, once it commits). */
  absorb(other: ChangeSet): void {
    for (const key of other.keys) this.keys.push(key);
    for (const table of other.tables) this.tables.add(table);
    for (const delay of other.lockDelays) this.lockDelays.push(delay);
  }
}

/** The context of one write. */
export interface WriteContext {
  /** The Raft index of the command being applied: every CreateIndex/ModifyIndex it sets. */
  readonly index: number;
  /** The leader's wall clock (ms) when it proposed the command: lock-delay deadlines. */
  readonly nowMs: number;
  /** Collects what changed, for the watch index. */
  readonly changes: ChangeSet;
}

/** The stores of the state machine, handed to the functions that span several of them. */
export interface StateStores {
  readonly kv: KvStore;
  readonly sessions: SessionStore;
  readonly catalog: CatalogStore;
}
