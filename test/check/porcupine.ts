/**
 * A linearizability checker: a TypeScript port of the algorithm in anishathalye/porcupine (MIT),
 * written from the papers, not from its code.
 *
 * - Wing & Gong (1993): walk the history as a list of call and return entries. Take the first
 *   call whose operation the model accepts in the current state, "lift" the call and its return
 *   out of the list and go on from the start; when a return is reached before its call was
 *   lifted, nothing else can go first, so undo the last lift (backtrack).
 * - Lowe (2017): remember every (set of linearized operations, model state) reached; reaching
 *   one again cannot succeed where it failed before, so skip it. This turns the exponential
 *   search into something that finishes on real histories.
 * - Herlihy & Wing P-compositionality: a history is linearizable iff each per-object (per-key)
 *   sub-history is, so the model's `partition` splits the history and each part is checked alone.
 *
 * See shared/RELIABILITY.md, "The checker". Budgets bound every search: running out gives
 * 'unknown', which a test must treat as a failure, never as a pass.
 */
import { assert } from '../../src/lib/assert.js';

/** One client call as the history recorded it. Times are in any unit, as long as it is one. */
export interface Operation<I, O> {
  /** The client (process) that made the call. Informational: the search does not use it. */
  readonly clientId: number;
  readonly input: I;
  readonly output: O;
  readonly callTime: number;
  /**
   * When the reply arrived. +Infinity when the outcome is unknown (timeout, crash): the call may
   * then take effect at any point after callTime, or never (it can be linearized last).
   */
  readonly returnTime: number;
}

/** [does the model allow this operation with this output in this state, the state after it]. */
export type StepResult<S> = readonly [legal: boolean, next: S];

/**
 * A sequential specification. `step` must be pure: states are shared between search branches
 * and the cache, so it returns a new state instead of changing the one it was given.
 */
export interface Model<S, I, O> {
  /** Names the model in reports. */
  readonly name: string;
  init(): S;
  step(state: S, input: I, output: O): StepResult<S>;
  /** State equality for the cache; states that are equal must have equal hashes. */
  equal(a: S, b: S): boolean;
  /** A 32-bit hash of the state; collisions only cost time. */
  hash(state: S): number;
  /**
   * Splits a history into independent parts (one per key). Every operation must land in
   * exactly one part. Absent: the history is checked whole.
   */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][];
  /**
   * For the violation shrinker only: false when a sub-history is illegal merely because an
   * operation it depends on was dropped (a read of a value whose write is gone). Such a
   * sub-history would "fail" for a reason the full history does not have. Absent: any counts.
   */
  isSelfContained?(operations: readonly Operation<I, O>[]): boolean;
  /** One-line text of an operation for reports, e.g. `put x=3 -> true`. */
  describeOperation?(input: I, output: O): string;
  describeState?(state: S): string;
}

/**
 * 'ok': linearizable. 'illegal': not linearizable (a definite anomaly). 'unknown': the budget ran
 * out first; a test run must fail on it, because nothing was proved.
 */
export type Verdict = 'ok' | 'illegal' | 'unknown';

/** Limits on one check. */
export interface CheckBudget {
  /** Wall time for the whole check, over all partitions. */
  readonly timeoutMs?: number;
  /** Search steps (entries visited) per partition. */
  readonly stepsMax?: number;
  /** Memory for the cache of one partition, in bytes (estimated). */
  readonly cacheBytesMax?: number;
}

/** The limit that ended a search: wall time, steps, or cache memory. */
export type BudgetKind = 'time' | 'steps' | 'memory';

/** Generous enough for the c50 vectors many times over; a test may pass a tighter one. */
export const CHECK_TIMEOUT_MS_DEFAULT = 60_000;
/** About ten seconds of search on one partition; a bounded search cannot hang a test run. */
export const CHECK_STEPS_MAX_DEFAULT = 50_000_000;
/**
 * An illegal history with many open (unknown-outcome) operations makes the search explore every
 * subset of them; the cache grows with it. Beyond this the answer is 'unknown', not an OOM.
 */
export const CACHE_BYTES_MAX_DEFAULT = 1024 * 1024 * 1024;
/** The deadline is read every this many steps: performance.now() is too slow for every step. */
const DEADLINE_CHECK_STEPS = 4096;

/** The outcome of `checkOperations`. */
export interface CheckResult<I, O> {
  readonly verdict: Verdict;
  /** When 'unknown': the limit the first undecided partition ran into. */
  readonly exhausted: BudgetKind | null;
  readonly partitionCount: number;
  /** Partitions searched before the verdict was known (the search stops at the first illegal). */
  readonly partitionsChecked: number;
  /** Partitions whose search ran out of budget. */
  readonly unknownPartitionCount: number;
  /** The operations of the first illegal partition, in history order; null unless 'illegal'. */
  readonly illegalOperations: readonly Operation<I, O>[] | null;
  readonly steps: number;
  readonly elapsedMs: number;
}

/** The outcome of `checkPartition`. */
export interface PartitionResult {
  readonly verdict: Verdict;
  /** Which limit ended the search when the verdict is 'unknown'; null otherwise. */
  readonly exhausted: BudgetKind | null;
  readonly steps: number;
  /**
   * The longest sequence of operations (indexes into the partition) that the search managed to
   * linearize; empty unless `trackLongest` was asked for. For a report of an illegal history.
   */
  readonly longestLinearization: readonly number[];
}

/** Options of `checkPartition`. */
export interface PartitionOptions {
  /** Absolute `performance.now()` time at which to give up. */
  readonly deadlineMs: number;
  readonly stepsMax: number;
  readonly cacheBytesMax?: number;
  readonly trackLongest?: boolean;
}

/**
 * Checks a whole history: splits it with the model's `partition`, then checks each part alone.
 * Stops at the first illegal part. Any part out of budget makes the verdict 'unknown' unless
 * another part is illegal.
 */
export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  budget: CheckBudget = {},
): CheckResult<I, O> {
  const startMs = performance.now();
  const timeoutMs = budget.timeoutMs ?? CHECK_TIMEOUT_MS_DEFAULT;
  const stepsMax = budget.stepsMax ?? CHECK_STEPS_MAX_DEFAULT;
  assert(timeoutMs > 0, 'timeoutMs must be positive');
  assert(stepsMax > 0, 'stepsMax must be positive');
  for (const operation of history) assertOperation(operation);

  const partitions = model.partition ? model.partition(history) : [history.slice()];
  const partitionedCount = partitions.reduce((sum, part) => sum + part.length, 0);
  assert(partitionedCount === history.length, 'partition must keep every operation exactly once');

  let steps = 0;
  let unknownPartitionCount = 0;
  let partitionsChecked = 0;
  let exhausted: BudgetKind | null = null;
  for (const part of partitions) {
    const result = checkPartition(model, part, {
      deadlineMs: startMs + timeoutMs,
      stepsMax,
      cacheBytesMax: budget.cacheBytesMax ?? CACHE_BYTES_MAX_DEFAULT,
    });
    partitionsChecked += 1;
    steps += result.steps;
    if (result.verdict === 'illegal') {
      return {
        verdict: 'illegal', exhausted: null, partitionCount: partitions.length, partitionsChecked,
        unknownPartitionCount, illegalOperations: part, steps,
        elapsedMs: performance.now() - startMs,
      };
    }
    if (result.verdict === 'unknown') {
      unknownPartitionCount += 1;
      exhausted ??= result.exhausted;
    }
  }
  return {
    verdict: unknownPartitionCount === 0 ? 'ok' : 'unknown', exhausted,
    partitionCount: partitions.length, partitionsChecked, unknownPartitionCount,
    illegalOperations: null, steps, elapsedMs: performance.now() - startMs,
  };
}

/** The list sentinel: node 0 is the head; NIL ends the list. */
const HEAD = 0;
const NIL = -1;

/**
 * The call/return entries of one partition as a doubly linked list over typed arrays: node 0 is
 * the head, nodes 1..2n are entries in time order. Lifting an operation unlinks its call and
 * return in O(1); unlifting relinks them (Knuth's dancing links), so backtracking is cheap.
 */
class EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Operation index of each node. */
  readonly operationOf: Int32Array;
  /** For a call node, its return node; NIL for a return node. */
  readonly returnOf: Int32Array;

  constructor(operations: readonly Operation<unknown, unknown>[]) {
    const count = operations.length;
    const events: { time: number; operation: number; isCall: boolean }[] = [];
    for (let index = 0; index < count; index++) {
      const operation = operations[index];
      assert(operation !== undefined);
      events.push({ time: operation.callTime, operation: index, isCall: true });
      events.push({ time: operation.returnTime, operation: index, isCall: false });
    }
    // At equal times calls go first: touching operations count as concurrent, the lenient and
    // usual reading (Porcupine does the same), since clocks cannot order them anyway.
    events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
    const nodeCount = 2 * count + 1;
    this.next = new Int32Array(nodeCount);
    this.prev = new Int32Array(nodeCount);
    this.operationOf = new Int32Array(nodeCount).fill(NIL);
    this.returnOf = new Int32Array(nodeCount).fill(NIL);
    const callNodeOf = new Int32Array(count).fill(NIL);
    for (let position = 0; position < events.length; position++) {
      const event = events[position];
      assert(event !== undefined);
      const node = position + 1;
      this.operationOf[node] = event.operation;
      if (event.isCall) {
        callNodeOf[event.operation] = node;
      } else {
        const callNode = callNodeOf[event.operation];
        assert(callNode !== undefined && callNode !== NIL, 'a return sorted before its call');
        this.returnOf[callNode] = node;
      }
    }
    for (let node = 0; node < nodeCount; node++) {
      this.next[node] = node + 1 < nodeCount ? node + 1 : NIL;
      this.prev[node] = node - 1;
    }
  }

  isEmpty(): boolean {
    return this.next[HEAD] === NIL;
  }

  first(): number {
    return this.next[HEAD] ?? NIL;
  }

  /** Unlinks a call and its return. */
  lift(callNode: number): void {
    const returnNode = this.returnOf[callNode] ?? NIL;
    assert(returnNode !== NIL, 'lift: not a call node');
    this.#unlink(callNode);
    this.#unlink(returnNode);
  }

  /** Undoes `lift`: relinks in the reverse order of unlinking, so the pointers are right. */
  unlift(callNode: number): void {
    const returnNode = this.returnOf[callNode] ?? NIL;
    assert(returnNode !== NIL, 'unlift: not a call node');
    this.#relink(returnNode);
    this.#relink(callNode);
  }

  #unlink(node: number): void {
    const before = this.prev[node] ?? NIL;
    const after = this.next[node] ?? NIL;
    this.next[before] = after;
    if (after !== NIL) this.prev[after] = before;
  }

  #relink(node: number): void {
    const before = this.prev[node] ?? NIL;
    const after = this.next[node] ?? NIL;
    this.next[before] = node;
    if (after !== NIL) this.prev[after] = node;
  }
}

/**
 * The set of linearized operations: a bitset with a Zobrist hash (XOR of a fixed random word per
 * member) kept up to date on every change, so the cache key costs O(1) instead of O(n).
 */
class LinearizedSet {
  readonly words: Uint32Array;
  hash = 0;
  readonly #zobrist: Uint32Array;

  constructor(count: number) {
    this.words = new Uint32Array(Math.ceil(count / 32));
    this.#zobrist = new Uint32Array(count);
    let seed = 0x9e3779b9;
    for (let index = 0; index < count; index++) {
      seed = (seed + 0x6d2b79f5) >>> 0; // mulberry32: fixed seed, so runs are reproducible.
      let z = seed;
      z = Math.imul(z ^ (z >>> 15), z | 1);
      z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
      this.#zobrist[index] = (z ^ (z >>> 14)) >>> 0;
    }
  }

  add(index: number): void {
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    assert(((this.words[word] ?? 0) & bit) === 0, 'operation linearized twice');
    this.words[word] = (this.words[word] ?? 0) | bit;
    this.hash = (this.hash ^ (this.#zobrist[index] ?? 0)) >>> 0;
  }

  remove(index: number): void {
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    assert(((this.words[word] ?? 0) & bit) !== 0, 'operation not linearized');
    this.words[word] = (this.words[word] ?? 0) & ~bit;
    this.hash = (this.hash ^ (this.#zobrist[index] ?? 0)) >>> 0;
  }
}

/**
 * Lowe's cache of (linearized set, state) pairs: an open-addressing hash table over typed
 * arrays. Each entry is the full key hash, the set's words in one shared arena and the state;
 * no object per entry, so millions of entries cost tens of bytes each instead of hundreds and
 * the garbage collector has nothing to trace but the states.
 */
class StateCache<S> {
  readonly #wordsPerEntry: number;
  readonly #entriesMax: number;
  /** Entry index + 1 per slot; 0 is empty. Length is a power of two, at most half full. */
  #slots = new Int32Array(1024);
  #hashes = new Uint32Array(512);
  #words: Uint32Array;
  readonly #states: S[] = [];

  constructor(wordsPerEntry: number, bytesMax: number) {
    this.#wordsPerEntry = Math.max(1, wordsPerEntry);
    // Bytes per entry: its words and hash, two table slots, and the state reference.
    this.#entriesMax = Math.floor(bytesMax / (4 * this.#wordsPerEntry + 4 + 8 + 8));
    this.#words = new Uint32Array(512 * this.#wordsPerEntry);
  }

  get count(): number {
    return this.#states.length;
  }

  isFull(): boolean {
    return this.count >= this.#entriesMax;
  }

  /**
   * Adds (words, state) and returns true, or returns false when it is already there: that
   * configuration was explored before and led nowhere (or is being explored now).
   */
  add(hash: number, words: Uint32Array, state: S, equal: (a: S, b: S) => boolean): boolean {
    assert(words.length <= this.#wordsPerEntry);
    const mask = this.#slots.length - 1;
    let slot = hash & mask;
    for (;;) {
      const entry = (this.#slots[slot] ?? 0) - 1;
      if (entry < 0) break;
      if (this.#hashes[entry] === hash && this.#wordsMatch(entry, words)) {
        if (equal(this.#states[entry] as S, state)) return false;
      }
      slot = (slot + 1) & mask;
    }
    const entry = this.#states.length;
    this.#ensureCapacity(entry + 1);
    this.#hashes[entry] = hash;
    this.#words.set(words, entry * this.#wordsPerEntry);
    this.#states.push(state);
    if (2 * (entry + 1) > this.#slots.length) this.#rehash();
    else this.#slots[slot] = entry + 1;
    return true;
  }

  #wordsMatch(entry: number, words: Uint32Array): boolean {
    const base = entry * this.#wordsPerEntry;
    for (let index = 0; index < words.length; index++) {
      if (this.#words[base + index] !== words[index]) return false;
    }
    return true;
  }

  #ensureCapacity(entries: number): void {
    if (entries <= this.#hashes.length) return;
    const capacity = this.#hashes.length * 2;
    const hashes = new Uint32Array(capacity);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
    const words = new Uint32Array(capacity * this.#wordsPerEntry);
    words.set(this.#words);
    this.#words = words;
  }

  /** Doubles the table and re-inserts every entry (the newest included). */
  #rehash(): void {
    this.#slots = new Int32Array(this.#slots.length * 2);
    const mask = this.#slots.length - 1;
    for (let entry = 0; entry < this.#states.length; entry++) {
      let slot = (this.#hashes[entry] ?? 0) & mask;
      while ((this.#slots[slot] ?? 0) !== 0) slot = (slot + 1) & mask;
      this.#slots[slot] = entry + 1;
    }
  }
}

/**
 * Checks one partition (one key's operations) with the Wing–Gong–Lowe search. Exported for the
 * shrinker in violation-report.ts, which re-checks sub-histories of one partition.
 */
export function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  options: PartitionOptions,
): PartitionResult {
  assert(options.stepsMax > 0);
  const list = new EntryList(operations);
  const linearized = new LinearizedSet(operations.length);
  const cacheBytesMax = options.cacheBytesMax ?? CACHE_BYTES_MAX_DEFAULT;
  const cache = new StateCache<S>(linearized.words.length, cacheBytesMax);
  const equal = model.equal.bind(model);
  const stackNodes: number[] = [];
  const stackStates: S[] = [];
  let longest: number[] = [];
  let state = model.init();
  let node = list.first();
  let steps = 0;
  while (!list.isEmpty()) {
    assert(node !== NIL, 'walked off the list: a call without its return');
    steps += 1;
    const exhausted = steps > options.stepsMax ? 'steps'
      : cache.isFull() ? 'memory'
      : steps % DEADLINE_CHECK_STEPS === 0 && performance.now() > options.deadlineMs ? 'time'
      : null;
    if (exhausted !== null) {
      return { verdict: 'unknown', exhausted, steps, longestLinearization: longest };
    }
    const operationIndex = list.operationOf[node] ?? NIL;
    const operation = operations[operationIndex];
    assert(operation !== undefined);
    if ((list.returnOf[node] ?? NIL) !== NIL) {
      // A call: try to linearize its operation here.
      const [legal, nextState] = model.step(state, operation.input, operation.output);
      if (legal) {
        linearized.add(operationIndex);
        const hash = (linearized.hash ^ Math.imul(model.hash(nextState) | 0, 0x9e3779b1)) >>> 0;
        if (cache.add(hash, linearized.words, nextState, equal)) {
          stackNodes.push(node);
          stackStates.push(state);
          state = nextState;
          list.lift(node);
          if (options.trackLongest === true && stackNodes.length > longest.length) {
            longest = stackNodes.map((stacked) => list.operationOf[stacked] ?? NIL);
          }
          node = list.first();
          continue;
        }
        linearized.remove(operationIndex);
      }
      node = list.next[node] ?? NIL;
    } else {
      // A return whose call is still in the list: that operation had to be linearized before
      // anything after this point, and no choice worked. Undo the last choice.
      if (stackNodes.length === 0) {
        return { verdict: 'illegal', exhausted: null, steps, longestLinearization: longest };
      }
      const undoneNode = stackNodes.pop() ?? NIL;
      state = stackStates.pop() as S; // pushed together with the node; S may include undefined
      linearized.remove(list.operationOf[undoneNode] ?? NIL);
      list.unlift(undoneNode);
      node = list.next[undoneNode] ?? NIL;
    }
  }
  assert(stackNodes.length === operations.length, 'every operation linearized exactly once');
  if (options.trackLongest === true) longest = stackNodes.map((n) => list.operationOf[n] ?? NIL);
  return { verdict: 'ok', exhausted: null, steps, longestLinearization: longest };
}

function assertOperation(operation: Operation<unknown, unknown>): void {
  assert(Number.isFinite(operation.callTime), 'callTime must be finite');
  assert(!Number.isNaN(operation.returnTime), 'returnTime must be a number (+Infinity if unknown)');
  assert(operation.returnTime >= operation.callTime, 'an operation returns after its call');
  assert(Number.isSafeInteger(operation.clientId), 'clientId must be an integer');
}

/** FNV-1a over UTF-16 code units: a cheap 32-bit hash for model states. */
export function hashString(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Mixes a number (an integer below 2^53) into a hash; for states made of several fields. */
export function hashNumber(value: number, seed = 0x811c9dc5): number {
  const low = value >>> 0;
  const high = Math.floor(value / 0x1_0000_0000) >>> 0;
  let hash = Math.imul((seed ^ low) >>> 0, 0x01000193);
  hash = Math.imul((hash ^ high) >>> 0, 0x01000193);
  return hash >>> 0;
}
