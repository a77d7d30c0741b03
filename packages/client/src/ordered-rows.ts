import { listView } from './list-view';
import {
  buildTree,
  type Compare,
  emptyTree,
  type Node,
  treeInsert,
  treeReplace,
  treeToArray,
} from './row-tree';

type Row = Record<string, unknown>;

/** Below this many rows, `setMany` inserts them one by one. */
const BULK_MIN = 256;

/**
 * A record's place in its list: commit order, then id. `created_sync_id` is the id, in its scope's
 * log, of the event that inserted the record; a record without one (an optimistic insert not yet
 * confirmed, or a row from a server that does not send it) sorts after every record that has one,
 * in the order it arrived here.
 */
export function createdSyncId(row: Row): number | undefined {
  const v = row.created_sync_id;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/**
 * The records of one model in one scope, kept in commit order in a persistent tree (see
 * `row-tree.ts`): a change costs O(log n) — it copies the few nodes on its path, never the list —
 * and leaves every earlier version as it was. `list()` hands out the current version as a frozen
 * array view (see `list-view.ts`), the same object until the next change, so it can serve as an
 * immutable, identity-compared value (a React selector result) at no cost per change.
 */
export class OrderedRows<R extends Row = Row> {
  #root: Node<R> = emptyTree();
  #byId = new Map<string, R>();
  /** Arrival order of rows without `created_sync_id`. */
  #arrival = new Map<string, number>();
  #nextArrival = 0;
  #view: readonly R[] | undefined;
  #compare: Compare<R> = (a, b) => this.#order(a, b);

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): R | undefined {
    return this.#byId.get(id);
  }

  /** The rows in order, as an immutable array; the same object until the list changes. */
  list(): readonly R[] {
    this.#view ??= listView(this.#root);
    return this.#view;
  }

  /**
   * Inserts or replaces many rows at once (a bootstrap, a burst of catch-up): when they are many
   * compared with the list, one sort of the whole — nearly sorted already, so close to O(n) — and
   * an O(n) build beat one path copy per row.
   */
  setMany(rows: readonly R[]): void {
    if (rows.length < BULK_MIN || rows.length * 4 < this.#byId.size) {
      for (const row of rows) this.set(row);
      return;
    }
    for (const row of rows) {
      const id = row.id as string;
      const prev = this.#byId.get(id);
      this.#byId.set(id, row);
      if (prev && createdSyncId(prev) === createdSyncId(row)) continue;
      this.#arrival.delete(id);
      if (createdSyncId(row) === undefined) this.#arrival.set(id, this.#nextArrival++);
    }
    this.#root = buildTree([...this.#byId.values()].sort(this.#compare));
    this.#view = undefined;
  }

  /** Inserts or replaces the row with `row.id`, moving it if its order key changed. */
  set(row: R): void {
    const id = row.id as string;
    const prev = this.#byId.get(id);
    this.#view = undefined;
    if (prev) {
      if (createdSyncId(prev) === createdSyncId(row)) {
        this.#byId.set(id, row);
        this.#root = this.#replace(prev, row);
        return;
      }
      this.#root = this.#replace(prev, null);
      this.#arrival.delete(id);
    }
    if (createdSyncId(row) === undefined) this.#arrival.set(id, this.#nextArrival++);
    this.#byId.set(id, row);
    this.#root = treeInsert(this.#root, row, this.#compare);
  }

  delete(id: string): boolean {
    const prev = this.#byId.get(id);
    if (!prev) return false;
    this.#root = this.#replace(prev, null);
    this.#view = undefined;
    this.#byId.delete(id);
    this.#arrival.delete(id);
    return true;
  }

  /** Replaces (or with null removes) `prev`, which is in the tree under its current key. */
  #replace(prev: R, row: R | null): Node<R> {
    const root = treeReplace(this.#root, prev, row, this.#compare);
    if (root) return root;
    // Unreachable while keys are consistent; rebuilding from the index keeps the list correct if not.
    const rest = treeToArray(this.#root).filter((r) => r.id !== prev.id);
    if (row) rest.push(row);
    return buildTree(rest.sort(this.#compare));
  }

  /** Negative when `a` sorts before `b`. */
  #order(a: R, b: R): number {
    const sa = createdSyncId(a);
    const sb = createdSyncId(b);
    if (sa !== undefined && sb !== undefined) {
      if (sa !== sb) return sa - sb;
    } else if (sa !== undefined) {
      return -1;
    } else if (sb !== undefined) {
      return 1;
    } else {
      const d = (this.#arrival.get(a.id as string) ?? 0) - (this.#arrival.get(b.id as string) ?? 0);
      if (d !== 0) return d;
    }
    const ia = a.id as string;
    const ib = b.id as string;
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  }
}
