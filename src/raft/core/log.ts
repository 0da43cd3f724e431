import { assert } from '../../lib/assert.js';
import type { Entry } from './types.js';

/**
 * The in-memory view of the log: entries after a compaction point, how far they are durable
 * (stable), committed and applied. The whole uncompacted log is kept in memory (the host
 * compacts after each snapshot), so the core never waits for storage to read an entry.
 *
 * Indexes: entries[k] has index firstIndex + k. `offsetIndex`/`offsetTerm` describe the entry
 * just before the first one kept (the last compacted entry, or 0/0).
 */
/** What a follower append changed. */
export interface AppendOutcome {
  readonly lastNew: number;
  /** The first index whose old entries were deleted, or null. */
  readonly truncatedFrom: number | null;
  readonly appended: readonly Entry[];
}

export class RaftLog {
  #entries: Entry[] = [];
  #offsetIndex: number;
  #offsetTerm: number;
  /** Entries with index <= stableIndex are known durable on this server. */
  stableIndex: number;
  committed: number;
  /** Highest index handed to the host to apply. */
  applied: number;
  /** Total bytes of data in entries after `committed` (for the uncommitted limit). */
  #uncommittedBytes = 0;

  constructor(offsetIndex: number, offsetTerm: number, entries: readonly Entry[], committed: number) {
    this.#offsetIndex = offsetIndex;
    this.#offsetTerm = offsetTerm;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k] as Entry;
      assert(entry.index === offsetIndex + 1 + k, 'stored entries are contiguous after the offset');
      this.#entries.push(entry);
    }
    this.stableIndex = this.lastIndex();
    this.committed = Math.max(offsetIndex, Math.min(committed, this.lastIndex()));
    this.applied = offsetIndex;
  }

  firstIndex(): number {
    return this.#offsetIndex + 1;
  }

  lastIndex(): number {
    return this.#offsetIndex + this.#entries.length;
  }

  lastTerm(): number {
    const last = this.#entries[this.#entries.length - 1];
    return last === undefined ? this.#offsetTerm : last.term;
  }

  offsetIndex(): number {
    return this.#offsetIndex;
  }

  /** The term at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.#offsetIndex) return this.#offsetTerm;
    if (index < this.#offsetIndex) return index === 0 ? 0 : undefined;
    const entry = this.#entries[index - this.#offsetIndex - 1];
    return entry?.term;
  }

  entry(index: number): Entry | undefined {
    return this.#entries[index - this.#offsetIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  uncommittedBytes(): number {
    return this.#uncommittedBytes;
  }

  /** Leader append: entries must follow the last index. */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1, 'appended entries follow the log');
      this.#entries.push(entry);
      this.#uncommittedBytes += entry.data.byteLength;
    }
  }

  /**
   * Follower append (Raft §5.3): entries follow prevIndex; an existing entry that conflicts
   * (same index, other term) is deleted with everything after it. Returns null if prev does not
   * match; otherwise the last index the leader sent and what changed (for configuration
   * tracking).
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): AppendOutcome | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    let firstNew = -1;
    for (let k = 0; k < entries.length; k++) {
      const entry = entries[k] as Entry;
      if (entry.index <= this.#offsetIndex) continue; // compacted: committed, so it matches
      if (this.term(entry.index) !== entry.term) {
        firstNew = k;
        break;
      }
    }
    if (firstNew < 0) return { lastNew, truncatedFrom: null, appended: [] };
    const from = (entries[firstNew] as Entry).index;
    assert(from > this.committed, 'never truncate committed entries');
    const truncatedFrom = from <= this.lastIndex() ? from : null;
    if (truncatedFrom !== null) this.#truncateFrom(truncatedFrom);
    const appended = entries.slice(firstNew);
    this.append(appended);
    return { lastNew, truncatedFrom, appended };
  }

  #truncateFrom(index: number): void {
    assert(index > this.#offsetIndex, 'truncation point is after the offset');
    const removed = this.#entries.splice(index - this.#offsetIndex - 1);
    for (const entry of removed) this.#uncommittedBytes -= entry.data.byteLength;
    if (this.stableIndex >= index) this.stableIndex = index - 1;
  }

  /** Entries in [from, to] (inclusive), at most `countMax` and about `bytesMax` (at least one). */
  slice(from: number, to: number, countMax: number, bytesMax: number): Entry[] {
    assert(from > this.#offsetIndex, 'slice starts after the offset');
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = from; index <= to && result.length < countMax; index++) {
      const entry = this.entry(index);
      if (entry === undefined) break;
      bytes += entry.data.byteLength;
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** Entries not yet known durable. */
  unstableEntries(): Entry[] {
    return this.#entries.slice(this.stableIndex - this.#offsetIndex);
  }

  /** The driver persisted everything up to (index, term). */
  stableTo(index: number, term: number): void {
    if (index > this.stableIndex && this.matchTerm(index, term)) this.stableIndex = index;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assert(index <= this.lastIndex(), 'commit index within the log');
    for (let i = this.committed + 1; i <= index; i++) {
      const entry = this.entry(i);
      if (entry !== undefined) this.#uncommittedBytes -= entry.data.byteLength;
    }
    this.committed = index;
    return true;
  }

  /** Committed entries after `applied` up to `upTo`, bounded by bytes (at least one). */
  nextCommitted(bytesMax: number, upTo = this.committed): Entry[] {
    // Committed entries that are not yet stable here are durable on a majority: a Ready hands
    // them out with its own `entries`, and the driver may apply them before that write ends.
    const last = Math.min(upTo, this.committed);
    if (this.applied >= last) return [];
    return this.slice(this.applied + 1, last, Number.MAX_SAFE_INTEGER, bytesMax);
  }

  /** Drops entries with index <= `index` (already in a snapshot), keeping their position known. */
  compactTo(index: number): void {
    if (index <= this.#offsetIndex) return;
    assert(index <= this.applied, 'compact only applied entries');
    const term = this.term(index);
    assert(term !== undefined, 'compaction point is in the log');
    this.#entries.splice(0, index - this.#offsetIndex);
    this.#offsetIndex = index;
    this.#offsetTerm = term;
  }

  /** Replaces the whole log by a snapshot's position (a follower installing a snapshot). */
  restore(index: number, term: number): void {
    this.#entries = [];
    this.#offsetIndex = index;
    this.#offsetTerm = term;
    this.#uncommittedBytes = 0;
    this.committed = index;
    this.stableIndex = index;
  }

  /** Entries of type config after the offset, for rebuilding the configuration. */
  *configEntries(): Iterable<Entry> {
    for (const entry of this.#entries) if (entry.type === 'config') yield entry;
  }

  /** Index of the first entry of `term` scanning back from `index` (fast backtracking hint). */
  firstIndexOfTerm(index: number, term: number): number {
    let i = index;
    while (i - 1 > this.#offsetIndex && this.term(i - 1) === term) i--;
    return i;
  }

  /** Index of the last entry whose term is <= `term`, scanning back from `index`. */
  lastIndexWithTermAtMost(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.#offsetIndex) {
      const t = this.term(i);
      if (t !== undefined && t <= term) return i;
      i--;
    }
    return this.#offsetIndex;
  }
}
