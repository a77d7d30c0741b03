/**
 * A persistent (immutable) ordered sequence: a B-tree whose nodes know their size, changed by
 * path copying. Inserting, replacing or deleting one element copies only the nodes on its path —
 * O(log n) nodes of at most `MAX` slots — and leaves every earlier version intact, so a version
 * handed out to a reader never changes and costs nothing to keep. Reading by position is
 * O(log n); building from a sorted array is O(n).
 *
 * The tree does not know the order itself: each change is given a `compare` that must be
 * consistent with the order the elements already have (the caller's sort key).
 */

/** Slots per node: a leaf's elements or a branch's children. */
const MAX = 64;

interface Leaf<T> {
  readonly leaf: true;
  readonly items: readonly T[];
}

interface Branch<T> {
  readonly leaf: false;
  readonly kids: readonly Node<T>[];
  /** Elements under each child. */
  readonly sizes: readonly number[];
  /** First element under each child: the keys that route a search. */
  readonly firsts: readonly T[];
  readonly size: number;
}

export type Node<T> = Leaf<T> | Branch<T>;

export type Compare<T> = (a: T, b: T) => number;

const EMPTY: Leaf<never> = Object.freeze({ leaf: true, items: Object.freeze([]) });

export function emptyTree<T>(): Node<T> {
  return EMPTY;
}

export function treeSize<T>(node: Node<T>): number {
  return node.leaf ? node.items.length : node.size;
}

function first<T>(node: Node<T>): T {
  return node.leaf ? node.items[0]! : node.firsts[0]!;
}

function branch<T>(kids: Node<T>[]): Branch<T> {
  const sizes = kids.map(treeSize);
  let size = 0;
  for (const s of sizes) size += s;
  return { leaf: false, kids, sizes, firsts: kids.map(first), size };
}

/** Splits an overfull node's slots into two halves. */
function halves<S>(slots: S[]): [S[], S[]] {
  const mid = slots.length >>> 1;
  return [slots.slice(0, mid), slots.slice(mid)];
}

/** A tree holding `sorted` in that order, leaves and branches filled to 3/4 (room to grow). */
export function buildTree<T>(sorted: readonly T[]): Node<T> {
  if (sorted.length === 0) return EMPTY;
  const fill = (MAX * 3) >>> 2;
  let level: Node<T>[] = [];
  for (let i = 0; i < sorted.length; i += fill) level.push({ leaf: true, items: sorted.slice(i, i + fill) });
  while (level.length > 1) {
    const up: Node<T>[] = [];
    for (let i = 0; i < level.length; i += fill) up.push(branch(level.slice(i, i + fill)));
    level = up;
  }
  return level[0]!;
}

/** The element at `index`, or undefined outside 0…size-1. O(log n). */
export function treeAt<T>(root: Node<T>, index: number): T | undefined {
  if (index < 0 || index >= treeSize(root)) return undefined;
  let node = root;
  let i = index;
  while (!node.leaf) {
    let k = 0;
    while (i >= node.sizes[k]!) i -= node.sizes[k++]!;
    node = node.kids[k]!;
  }
  return node.items[i];
}

/** Appends the elements from `start` (inclusive) to `end` (exclusive) to `out`. O(log n + count). */
export function treeRange<T>(node: Node<T>, start: number, end: number, out: T[]): void {
  if (node.leaf) {
    for (let i = Math.max(0, start); i < Math.min(end, node.items.length); i++) out.push(node.items[i]!);
    return;
  }
  let offset = 0;
  for (let k = 0; k < node.kids.length && offset < end; k++) {
    const size = node.sizes[k]!;
    if (offset + size > start) treeRange(node.kids[k]!, start - offset, end - offset, out);
    offset += size;
  }
}

/** The index of the child whose range holds `item`: the last one whose first element is ≤ it. */
function route<T>(node: Branch<T>, item: T, compare: Compare<T>): number {
  let lo = 1;
  let hi = node.kids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(node.firsts[mid]!, item) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** First index in `items` whose element sorts at or after `item`. */
function lowerBound<T>(items: readonly T[], item: T, compare: Compare<T>): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(items[mid]!, item) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Inserts `item` at its sorted place; returns the new root. */
export function treeInsert<T>(root: Node<T>, item: T, compare: Compare<T>): Node<T> {
  const parts = insertInto(root, item, compare);
  return parts.length === 1 ? parts[0]! : branch(parts);
}

function insertInto<T>(node: Node<T>, item: T, compare: Compare<T>): Node<T>[] {
  if (node.leaf) {
    const items = node.items.slice();
    items.splice(lowerBound(items, item, compare), 0, item);
    if (items.length <= MAX) return [{ leaf: true, items }];
    return halves(items).map((part) => ({ leaf: true, items: part }));
  }
  const k = route(node, item, compare);
  const kids = node.kids.slice();
  kids.splice(k, 1, ...insertInto(node.kids[k]!, item, compare));
  return kids.length <= MAX ? [branch(kids)] : halves(kids).map(branch);
}

/**
 * Replaces the element that compares equal to `item` (the same sort key) with `item`, or removes
 * it when `item` is `null` (then `key` names it); returns the new root, or undefined when no
 * element has that key.
 */
export function treeReplace<T>(
  root: Node<T>,
  key: T,
  item: T | null,
  compare: Compare<T>,
): Node<T> | undefined {
  const out = replaceIn(root, key, item, compare);
  if (out === undefined) return undefined;
  if (out === null) return EMPTY;
  // A branch left with one child is replaced by that child, so depth shrinks as the tree does.
  let node = out;
  while (!node.leaf && node.kids.length === 1) node = node.kids[0]!;
  return node;
}

/** The changed node; null when it became empty; undefined when the key is not under it. */
function replaceIn<T>(
  node: Node<T>,
  key: T,
  item: T | null,
  compare: Compare<T>,
): Node<T> | null | undefined {
  if (node.leaf) {
    const at = lowerBound(node.items, key, compare);
    if (at >= node.items.length || compare(node.items[at]!, key) !== 0) return undefined;
    const items = node.items.slice();
    if (item === null) items.splice(at, 1);
    else items[at] = item;
    return items.length === 0 ? null : { leaf: true, items };
  }
  const k = route(node, key, compare);
  const kid = replaceIn(node.kids[k]!, key, item, compare);
  if (kid === undefined) return undefined;
  const kids = node.kids.slice();
  if (kid === null) kids.splice(k, 1);
  else kids[k] = kid;
  return kids.length === 0 ? null : branch(kids);
}

/** Every element in order, appended to `out`. O(n). */
export function treeToArray<T>(node: Node<T>, out: T[] = []): T[] {
  if (node.leaf) {
    for (const item of node.items) out.push(item);
  } else {
    for (const kid of node.kids) treeToArray(kid, out);
  }
  return out;
}
