/**
 * An ordered map from string keys to values: a hash map for O(1) lookups and in-place updates,
 * plus a B+ tree of the keys (linked leaves) for O(log n) insert/delete and ordered iteration from
 * any key (prefix listings). Updating an existing key — the common write, e.g. Swarm's heartbeat
 * PUTs — never touches the tree. Keys sort by their UTF-8 bytes, as Consul's radix tree (and
 * LevelDB's default comparator) do, not by JS's UTF-16 `<`.
 */
import { assert } from '../lib/assert.js';
import { ORDERED_MAP_NODE_ENTRIES_MAX } from './limits.js';

/**
 * Compares two strings by the UTF-8 bytes of their code points. JS `<` compares UTF-16 code
 * units, which puts U+10000..U+10FFFF (surrogate pairs, 0xD800..0xDFFF) *before* U+E000..U+FFFF;
 * in UTF-8 (and code point order) they come after. Moving surrogates above 0xFFFF-range units
 * at the first difference fixes that (the ICU "code point order" trick).
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  if (isNativeOrdered(a) || isNativeOrdered(b)) return a < b ? -1 : 1;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrderUnit(x) - codePointOrderUnit(y);
  }
  return a.length - b.length;
}

/** A UTF-16 code unit ≥ 0xD800: a surrogate, or U+E000..U+FFFF. */
const HIGH_UNIT = /[\ud800-\uffff]/;

/**
 * True when JS `<` between `key` and any string gives UTF-8 order: `key` has no unit ≥ 0xD800, so
 * at the first difference its unit is below every unit the two orders disagree on. Keys almost
 * always are; a native comparison is ~2× faster than the loop above (B+ tree searches, sorts).
 */
function isNativeOrdered(key: string): boolean {
  return !HIGH_UNIT.test(key);
}

function codePointOrderUnit(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** True when the string has no lone surrogate, so its UTF-8 encoding is lossless. */
export function isWellFormed(text: string): boolean {
  return nativeIsWellFormed === undefined ? !/\p{Cs}/u.test(text) : nativeIsWellFormed.call(text);
}

/**
 * ES2024's String.prototype.isWellFormed, which Node 20's V8 has (~5× faster than the regex,
 * which ran once per decoded string); TypeScript's ES2023 lib does not declare it yet.
 */
const nativeIsWellFormed = (String.prototype as { readonly isWellFormed?: (this: string) => boolean }).isWellFormed;

interface Leaf {
  readonly leaf: true;
  keys: string[];
  next: Leaf | null;
}

interface Branch {
  readonly leaf: false;
  /** keys[i] is ≤ every key of children[i + 1] and > every key of children[i]. */
  keys: string[];
  children: TreeNode[];
}

type TreeNode = Leaf | Branch;

interface Split {
  readonly separator: string;
  readonly right: TreeNode;
}

const NODE_MAX = ORDERED_MAP_NODE_ENTRIES_MAX;
const NODE_MIN = Math.floor(NODE_MAX / 2);

/**
 * The first position whose key is ≥ `key`. `nativeOrdered`: isNativeOrdered(key), computed once
 * per tree operation rather than once per comparison.
 */
function lowerBound(keys: readonly string[], key: string, nativeOrdered: boolean): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const probe = keys[mid] as string;
    if (nativeOrdered ? probe < key : compareKeys(probe, key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The first position whose key is > `key`: the child of a branch that may hold `key`. */
function upperBound(keys: readonly string[], key: string, nativeOrdered: boolean): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const probe = keys[mid] as string;
    if (nativeOrdered ? probe <= key : compareKeys(probe, key) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

function nodeSize(node: TreeNode): number {
  return node.leaf ? node.keys.length : node.children.length;
}

function newLeaf(): Leaf {
  return { leaf: true, keys: [], next: null };
}

/**
 * The map as it was when captured (OrderedMap.capture), while the map itself goes on changing:
 * its keys then, in order, and each one's value then. Release it when done: until then, every
 * write to the map first notes the value it replaces.
 */
export interface MapCapture<V> {
  readonly keys: readonly string[];
  /** The value of keys[index] when captured. */
  valueAt(index: number): V;
  /** Stops noting replaced values. Idempotent. */
  release(): void;
}

/** An ordered map. Iterators must not be held across writes: collect keys first, then write. */
export class OrderedMap<V> {
  readonly #values = new Map<string, V>();
  #root: TreeNode = newLeaf();
  /** Per live capture: key → its value when captured, noted at the first write since. */
  readonly #captures = new Set<Map<string, V | undefined>>();

  /**
   * A map of `keys[i]` → `values[i]`, keys strictly ascending in UTF-8 order (a snapshot's rows
   * are). Builds the tree bottom-up, every node filled evenly to at most NODE_MAX: O(n), with no
   * search and no splice per key. Inserting the keys one by one was ~40 % of a restart's CPU
   * (1M keys), and left sequentially inserted leaves half full.
   */
  static fromSorted<V>(keys: readonly string[], values: readonly V[]): OrderedMap<V> {
    assert(keys.length === values.length, 'one value per key');
    const map = new OrderedMap<V>();
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i] as string;
      assert(i === 0 || compareKeys(keys[i - 1] as string, key) < 0, 'bulk-loaded keys are sorted and unique');
      map.#values.set(key, values[i] as V);
    }
    if (keys.length > 0) map.#root = buildTree(keys);
    return map;
  }

  /** Captures not yet released (tests: an abandoned snapshot must not leave one behind). */
  get liveCaptures(): number {
    return this.#captures.size;
  }

  /** The number of keys. */
  get size(): number {
    return this.#values.size;
  }

  /** The value stored under `key`, or undefined. */
  get(key: string): V | undefined {
    return this.#values.get(key);
  }

  /** True when `key` is present. */
  has(key: string): boolean {
    return this.#values.has(key);
  }

  /** Inserts or replaces. */
  set(key: string, value: V): void {
    if (this.#captures.size > 0) this.#noteForCaptures(key);
    // One hash lookup, not has() then set(): at 1M keys each is a cache miss or two.
    const sizeBefore = this.#values.size;
    this.#values.set(key, value);
    if (this.#values.size === sizeBefore) return;
    const split = this.#insert(this.#root, key, isNativeOrdered(key));
    if (split !== null) this.#root = { leaf: false, keys: [split.separator], children: [this.#root, split.right] };
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: string): boolean {
    if (this.#captures.size > 0) this.#noteForCaptures(key);
    if (!this.#values.delete(key)) return false;
    const removed = this.#remove(this.#root, key, isNativeOrdered(key));
    assert(removed, 'the key tree holds every key of the map');
    const root = this.#root;
    if (!root.leaf && root.children.length === 1) this.#root = root.children[0] as TreeNode;
    return true;
  }

  /** Removes every key. */
  clear(): void {
    if (this.#captures.size > 0) for (const key of this.#values.keys()) this.#noteForCaptures(key);
    this.#values.clear();
    this.#root = newLeaf();
  }

  /**
   * Every value in key order, as an array: a snapshot's walk over every key, which through the
   * entries() generator (a [key, value] pair and a resumption per key) took ~0.5 s at 1M keys.
   */
  valuesInKeyOrder(): V[] {
    const values = this.#values;
    return this.#keysInOrder().map((key) => values.get(key) as V);
  }

  /** Every key in order, by a walk of the leaf chain. */
  #keysInOrder(): string[] {
    const keys: string[] = [];
    let node = this.#root;
    while (!node.leaf) node = node.children[0] as TreeNode;
    for (let leaf: Leaf | null = node; leaf !== null; leaf = leaf.next) {
      for (const key of leaf.keys) keys.push(key);
    }
    assert(keys.length === this.#values.size, 'the leaf chain holds every key');
    return keys;
  }

  /**
   * The map as it is now, readable while it changes (MapCapture). Costs a walk of the leaves
   * for the keys (~20× cheaper than valuesInKeyOrder's hash lookup per key, which the capture
   * defers to valueAt), then one extra lookup per write until released.
   */
  capture(): MapCapture<V> {
    const keys = this.#keysInOrder();
    const before = new Map<string, V | undefined>();
    this.#captures.add(before);
    const values = this.#values;
    return {
      keys,
      valueAt(index: number): V {
        const key = keys[index] as string;
        // Every captured key had a value then: a noted undefined cannot be one of these keys.
        return (before.size > 0 && before.has(key) ? before.get(key) : values.get(key)) as V;
      },
      release: () => {
        this.#captures.delete(before);
      },
    };
  }

  #noteForCaptures(key: string): void {
    for (const before of this.#captures) if (!before.has(key)) before.set(key, this.#values.get(key));
  }

  /** Every entry in key order. */
  entries(): IterableIterator<[string, V]> {
    return this.entriesFrom('');
  }

  /** Entries with key ≥ `low`, in key order. */
  *entriesFrom(low: string): IterableIterator<[string, V]> {
    const nativeOrdered = isNativeOrdered(low);
    let leaf: Leaf | null = this.#findLeaf(low, nativeOrdered);
    let position = lowerBound(leaf.keys, low, nativeOrdered);
    while (leaf !== null) {
      for (; position < leaf.keys.length; position++) {
        const key = leaf.keys[position] as string;
        yield [key, this.#values.get(key) as V];
      }
      leaf = leaf.next;
      position = 0;
    }
  }

  /**
   * Entries whose key starts with `prefix`, in key order. For well-formed strings a string prefix
   * is exactly a UTF-8 byte prefix, and all such keys are contiguous in UTF-8 order.
   */
  *entriesWithPrefix(prefix: string): IterableIterator<[string, V]> {
    for (const entry of this.entriesFrom(prefix)) {
      if (!entry[0].startsWith(prefix)) return;
      yield entry;
    }
  }

  /**
   * Checks the whole tree against the B+ tree invariants and the hash map (tests call it after
   * random operations and bulk loads): O(n), not for production paths.
   */
  assertInvariants(): void {
    const leafDepths = new Set<number>();
    const treeKeyCount = checkNode(this.#root, 0, true, null, null, leafDepths);
    assert(leafDepths.size <= 1, 'every leaf is at the same depth');
    assert(treeKeyCount === this.#values.size, 'the tree holds as many keys as the map');
    let node = this.#root;
    while (!node.leaf) node = node.children[0] as TreeNode;
    let leaf: Leaf | null = node;
    let previous: string | null = null;
    let linkedKeyCount = 0;
    while (leaf !== null) {
      for (const key of leaf.keys) {
        assert(previous === null || compareKeys(previous, key) < 0, 'the leaf chain is in strictly ascending key order');
        assert(this.#values.has(key), 'every tree key is in the map');
        previous = key;
        linkedKeyCount++;
      }
      leaf = leaf.next;
    }
    assert(linkedKeyCount === treeKeyCount, 'the leaf chain reaches every leaf');
  }

  #findLeaf(key: string, nativeOrdered: boolean): Leaf {
    let node = this.#root;
    while (!node.leaf) node = node.children[upperBound(node.keys, key, nativeOrdered)] as TreeNode;
    return node;
  }

  #insert(node: TreeNode, key: string, nativeOrdered: boolean): Split | null {
    if (node.leaf) return insertIntoLeaf(node, key, nativeOrdered);
    const childIndex = upperBound(node.keys, key, nativeOrdered);
    const split = this.#insert(node.children[childIndex] as TreeNode, key, nativeOrdered);
    if (split === null) return null;
    node.keys.splice(childIndex, 0, split.separator);
    node.children.splice(childIndex + 1, 0, split.right);
    if (node.children.length <= NODE_MAX) return null;
    const middle = node.children.length >>> 1;
    const rightKeys = node.keys.splice(middle);
    const separator = node.keys.pop();
    assert(separator !== undefined, 'a full branch has a middle separator');
    const right: Branch = { leaf: false, keys: rightKeys, children: node.children.splice(middle) };
    assert(right.keys.length === right.children.length - 1, 'right branch shape');
    return { separator, right };
  }

  #remove(node: TreeNode, key: string, nativeOrdered: boolean): boolean {
    if (node.leaf) {
      const position = lowerBound(node.keys, key, nativeOrdered);
      if (node.keys[position] !== key) return false;
      node.keys.splice(position, 1);
      return true;
    }
    const childIndex = upperBound(node.keys, key, nativeOrdered);
    const child = node.children[childIndex] as TreeNode;
    const removed = this.#remove(child, key, nativeOrdered);
    if (removed && nodeSize(child) < NODE_MIN) rebalance(node, childIndex);
    return removed;
  }
}

/**
 * The root of a tree over `keys` (sorted, unique, at least one): leaves of NODE_MAX keys at most,
 * spread evenly so none has fewer than NODE_MIN (when there are several), then each level of
 * branches the same way until one node is left.
 */
function buildTree(keys: readonly string[]): TreeNode {
  assert(keys.length > 0, 'a built tree has keys');
  const leaves: Leaf[] = [];
  for (const [start, end] of evenRanges(keys.length)) leaves.push({ leaf: true, keys: keys.slice(start, end), next: null });
  for (let i = 0; i + 1 < leaves.length; i++) (leaves[i] as Leaf).next = leaves[i + 1] as Leaf;
  let level: TreeNode[] = leaves;
  // The smallest key under each node of `level`: the separator its parent puts before it.
  let lowKeys: string[] = leaves.map((leaf) => leaf.keys[0] as string);
  while (level.length > 1) {
    const parents: Branch[] = [];
    const parentLowKeys: string[] = [];
    for (const [start, end] of evenRanges(level.length)) {
      parents.push({ leaf: false, keys: lowKeys.slice(start + 1, end), children: level.slice(start, end) });
      parentLowKeys.push(lowKeys[start] as string);
    }
    level = parents;
    lowKeys = parentLowKeys;
  }
  return level[0] as TreeNode;
}

/**
 * Splits `count` items into ceil(count / NODE_MAX) consecutive ranges whose sizes differ by at
 * most one: each is ≤ NODE_MAX and, when there are two or more, > NODE_MAX / 2 ≥ NODE_MIN.
 */
function evenRanges(count: number): [number, number][] {
  assert(count > 0, 'ranges of a non-empty level');
  const rangeCount = Math.ceil(count / NODE_MAX);
  const ranges: [number, number][] = [];
  for (let i = 0; i < rangeCount; i++) ranges.push([Math.floor((i * count) / rangeCount), Math.floor(((i + 1) * count) / rangeCount)]);
  return ranges;
}

/**
 * Checks the subtree at `node` (keys within [low, high) where given, node sizes, branch shape)
 * and records the depth of its leaves; returns how many keys it holds.
 */
function checkNode(node: TreeNode, depth: number, isRoot: boolean, low: string | null, high: string | null, leafDepths: Set<number>): number {
  const size = nodeSize(node);
  assert(size <= NODE_MAX, 'no node is above NODE_MAX');
  assert(isRoot || size >= NODE_MIN, 'no node but the root is below NODE_MIN');
  for (let i = 0; i < node.keys.length; i++) {
    const key = node.keys[i] as string;
    assert(i === 0 || compareKeys(node.keys[i - 1] as string, key) < 0, 'a node\'s keys ascend');
    assert(low === null || compareKeys(low, key) <= 0, 'a key is not below its subtree\'s separator');
    assert(high === null || compareKeys(key, high) < 0, 'a key is below the next separator');
  }
  if (node.leaf) {
    leafDepths.add(depth);
    return node.keys.length;
  }
  assert(node.keys.length === node.children.length - 1, 'a branch has one separator between each two children');
  assert(isRoot ? node.children.length >= 2 : true, 'a branch root has two children at least');
  let count = 0;
  for (let i = 0; i < node.children.length; i++) {
    const childLow = i === 0 ? low : (node.keys[i - 1] as string);
    const childHigh = i === node.keys.length ? high : (node.keys[i] as string);
    count += checkNode(node.children[i] as TreeNode, depth + 1, false, childLow, childHigh, leafDepths);
  }
  return count;
}

function insertIntoLeaf(leaf: Leaf, key: string, nativeOrdered: boolean): Split | null {
  const position = lowerBound(leaf.keys, key, nativeOrdered);
  assert(leaf.keys[position] !== key, 'only new keys are inserted into the tree');
  leaf.keys.splice(position, 0, key);
  if (leaf.keys.length <= NODE_MAX) return null;
  const right: Leaf = { leaf: true, keys: leaf.keys.splice(leaf.keys.length >>> 1), next: leaf.next };
  leaf.next = right;
  return { separator: right.keys[0] as string, right };
}

/** Restores the minimum fill of `parent.children[index]` by borrowing from or merging with a sibling. */
function rebalance(parent: Branch, index: number): void {
  const child = parent.children[index] as TreeNode;
  const left = parent.children[index - 1];
  const right = parent.children[index + 1];
  if (left !== undefined && nodeSize(left) > NODE_MIN) {
    borrowFromLeft(parent, index, left, child);
  } else if (right !== undefined && nodeSize(right) > NODE_MIN) {
    borrowFromRight(parent, index, child, right);
  } else if (left !== undefined) {
    mergeInto(parent, index - 1, left, child);
  } else if (right !== undefined) {
    mergeInto(parent, index, child, right);
  }
}

function borrowFromLeft(parent: Branch, index: number, left: TreeNode, child: TreeNode): void {
  if (left.leaf && child.leaf) {
    child.keys.unshift(left.keys.pop() as string);
    parent.keys[index - 1] = child.keys[0] as string;
    return;
  }
  assert(!left.leaf && !child.leaf, 'siblings have the same height');
  child.children.unshift(left.children.pop() as TreeNode);
  child.keys.unshift(parent.keys[index - 1] as string);
  parent.keys[index - 1] = left.keys.pop() as string;
}

function borrowFromRight(parent: Branch, index: number, child: TreeNode, right: TreeNode): void {
  if (right.leaf && child.leaf) {
    child.keys.push(right.keys.shift() as string);
    parent.keys[index] = right.keys[0] as string;
    return;
  }
  assert(!right.leaf && !child.leaf, 'siblings have the same height');
  child.children.push(right.children.shift() as TreeNode);
  child.keys.push(parent.keys[index] as string);
  parent.keys[index] = right.keys.shift() as string;
}

/** Moves `right` (= parent.children[index + 1]) into `left` (= parent.children[index]). */
function mergeInto(parent: Branch, index: number, left: TreeNode, right: TreeNode): void {
  const separator = parent.keys[index] as string;
  if (left.leaf && right.leaf) {
    left.keys.push(...right.keys);
    left.next = right.next;
  } else {
    assert(!left.leaf && !right.leaf, 'siblings have the same height');
    left.keys.push(separator, ...right.keys);
    left.children.push(...right.children);
  }
  assert(nodeSize(left) <= NODE_MAX, 'a merge never overfills a node');
  parent.keys.splice(index, 1);
  parent.children.splice(index + 1, 1);
}
