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
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrderUnit(x) - codePointOrderUnit(y);
  }
  return a.length - b.length;
}

function codePointOrderUnit(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** True when the string has no lone surrogate, so its UTF-8 encoding is lossless. */
export function isWellFormed(text: string): boolean {
  return !/\p{Cs}/u.test(text);
}

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

/** The first position whose key is ≥ `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(keys[mid] as string, key) < 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The first position whose key is > `key`: the child of a branch that may hold `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(keys[mid] as string, key) <= 0) low = mid + 1;
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

/** An ordered map. Iterators must not be held across writes: collect keys first, then write. */
export class OrderedMap<V> {
  readonly #values = new Map<string, V>();
  #root: TreeNode = newLeaf();

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
    const isNew = !this.#values.has(key);
    this.#values.set(key, value);
    if (!isNew) return;
    const split = this.#insert(this.#root, key);
    if (split !== null) this.#root = { leaf: false, keys: [split.separator], children: [this.#root, split.right] };
  }

  /** Removes `key`; returns whether it was present. */
  delete(key: string): boolean {
    if (!this.#values.delete(key)) return false;
    const removed = this.#remove(this.#root, key);
    assert(removed, 'the key tree holds every key of the map');
    const root = this.#root;
    if (!root.leaf && root.children.length === 1) this.#root = root.children[0] as TreeNode;
    return true;
  }

  /** Removes every key. */
  clear(): void {
    this.#values.clear();
    this.#root = newLeaf();
  }

  /** Every entry in key order. */
  entries(): IterableIterator<[string, V]> {
    return this.entriesFrom('');
  }

  /** Entries with key ≥ `low`, in key order. */
  *entriesFrom(low: string): IterableIterator<[string, V]> {
    let leaf: Leaf | null = this.#findLeaf(low);
    let position = lowerBound(leaf.keys, low);
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

  #findLeaf(key: string): Leaf {
    let node = this.#root;
    while (!node.leaf) node = node.children[upperBound(node.keys, key)] as TreeNode;
    return node;
  }

  #insert(node: TreeNode, key: string): Split | null {
    if (node.leaf) return insertIntoLeaf(node, key);
    const childIndex = upperBound(node.keys, key);
    const split = this.#insert(node.children[childIndex] as TreeNode, key);
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

  #remove(node: TreeNode, key: string): boolean {
    if (node.leaf) {
      const position = lowerBound(node.keys, key);
      if (node.keys[position] !== key) return false;
      node.keys.splice(position, 1);
      return true;
    }
    const childIndex = upperBound(node.keys, key);
    const child = node.children[childIndex] as TreeNode;
    const removed = this.#remove(child, key);
    if (removed && nodeSize(child) < NODE_MIN) rebalance(node, childIndex);
    return removed;
  }
}

function insertIntoLeaf(leaf: Leaf, key: string): Split | null {
  const position = lowerBound(leaf.keys, key);
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
