type Row = Record<string, unknown>;

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
 * The records of one model in one scope, kept in commit order as a plain array, updated in place
 * by binary search: a change costs O(log n) to find its place, plus one copy of the array when the
 * previous array was handed out (copy on write, at most once per published snapshot, and only
 * for lists someone read). A handed-out array is never changed afterwards, so it can serve as an
 * immutable, identity-compared value (a React selector result).
 */
export class OrderedRows<R extends Row = Row> {
  #rows: R[] = [];
  #byId = new Map<string, R>();
  /** Arrival order of rows without `created_sync_id`. */
  #arrival = new Map<string, number>();
  #nextArrival = 0;
  #handedOut = false;

  get size(): number {
    return this.#rows.length;
  }

  get(id: string): R | undefined {
    return this.#byId.get(id);
  }

  /** The rows in order. The array is frozen in practice: later changes go to a copy. */
  list(): readonly R[] {
    this.#handedOut = true;
    return this.#rows;
  }

  /** Inserts or replaces the row with `row.id`, moving it if its order key changed. */
  set(row: R): void {
    const id = row.id as string;
    const prev = this.#byId.get(id);
    const rows = this.#writable();
    if (prev) {
      const at = this.#indexOf(prev);
      if (createdSyncId(prev) === createdSyncId(row)) {
        rows[at] = row;
        this.#byId.set(id, row);
        return;
      }
      rows.splice(at, 1);
      this.#arrival.delete(id);
    }
    if (createdSyncId(row) === undefined) this.#arrival.set(id, this.#nextArrival++);
    this.#byId.set(id, row);
    const at = this.#insertionPoint(row);
    if (at === rows.length) rows.push(row);
    else rows.splice(at, 0, row);
  }

  delete(id: string): boolean {
    const prev = this.#byId.get(id);
    if (!prev) return false;
    this.#writable().splice(this.#indexOf(prev), 1);
    this.#byId.delete(id);
    this.#arrival.delete(id);
    return true;
  }

  #writable(): R[] {
    if (this.#handedOut) {
      this.#rows = this.#rows.slice();
      this.#handedOut = false;
    }
    return this.#rows;
  }

  /** Negative when `a` sorts before `b`. */
  #compare(a: R, b: R): number {
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

  /** First index whose row sorts at or after `row`. */
  #insertionPoint(row: R): number {
    const n = this.#rows.length;
    // New records mostly arrive in commit order (a bootstrap, live inserts): check the end first.
    if (n === 0 || this.#compare(this.#rows[n - 1]!, row) < 0) return n;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(this.#rows[mid]!, row) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of a row that is in the list (found by its order key, then by identity). */
  #indexOf(row: R): number {
    const at = this.#insertionPoint(row);
    if (this.#rows[at] === row) return at;
    // Unreachable while keys are consistent; a linear scan keeps the list correct if not.
    return this.#rows.indexOf(row);
  }
}
