/** What applying one batch of a scope's events did to its cursor. */
export interface ApplyOutcome {
  /** Events that were the next id (delivered exactly once, in order). */
  accepted: number;
  /** Events with an id at or below the cursor: delivered again. */
  duplicates: number;
  /** Ids skipped over: a gap the stream never filled. */
  lost: number;
}

/**
 * The client side of the contract's guarantee, per scope: after a bootstrap (or a resume) at L,
 * the stream must deliver L+1, L+2, ... each exactly once. Anything else is counted, not thrown,
 * so a load run reports every violation it saw.
 */
export class ScopeCursors {
  readonly #cursors = new Map<string, number>();

  /** Sets the cursor from a bootstrap (or the cursor a resume starts from). */
  baseline(scope: string, lastSyncId: number): void {
    this.#cursors.set(scope, lastSyncId);
  }

  cursor(scope: string): number | undefined {
    return this.#cursors.get(scope);
  }

  has(scope: string): boolean {
    return this.#cursors.has(scope);
  }

  entries(): IterableIterator<[string, number]> {
    return this.#cursors.entries();
  }

  /** Applies event ids of one `sync` frame in the order they arrived. */
  apply(scope: string, ids: readonly number[]): ApplyOutcome {
    const outcome: ApplyOutcome = { accepted: 0, duplicates: 0, lost: 0 };
    for (const id of ids) {
      const one = this.applyOne(scope, id);
      if (one === 'duplicate') outcome.duplicates++;
      else {
        outcome.accepted++;
        outcome.lost += one;
      }
    }
    return outcome;
  }

  /**
   * Applies one event id: `'duplicate'` when it is at or below the cursor (nothing moves),
   * otherwise the number of ids it skipped over (0 when it was the next one) as the cursor moves
   * to it. Allocates nothing: the load's viewers call it for every event.
   */
  applyOne(scope: string, id: number): number | 'duplicate' {
    const cursor = this.#cursors.get(scope);
    // Events before any bootstrap: the stream started mid-way; take it as the baseline.
    if (cursor === undefined) {
      this.#cursors.set(scope, id);
      return 0;
    }
    if (id <= cursor) return 'duplicate';
    this.#cursors.set(scope, id);
    return id - cursor - 1;
  }
}
