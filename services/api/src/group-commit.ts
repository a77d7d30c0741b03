import type { Principal } from '@openagents/sync-server-kit';
import { toAppError } from '@openagents/sync-server-kit';
import { type CommitDeps, type CommitItem, commitItems, type MutationOutcome } from './commit';
import type { PlannedMutation } from './mutation-plan';

export interface GroupCommitOptions {
  /** Most mutations joined into one transaction; 1 turns grouping (and the queue) off. */
  maxGroup: number;
  /** Write transactions this worker runs at once; requests beyond that queue and get grouped. */
  maxInFlight: number;
}

export const GROUP_COMMIT_DEFAULTS: GroupCommitOptions = { maxGroup: 32, maxInFlight: 8 };

/** Joins concurrent single-record writes into shared transactions. */
export interface GroupCommitter {
  /** Commits one mutation, alone or with others that are waiting at the same time. */
  commit(principal: Principal, mutation: PlannedMutation): Promise<MutationOutcome>;
  /** Mutations waiting for a transaction slot. */
  queued(): number;
}

interface Pending {
  item: CommitItem;
  resolve(outcome: MutationOutcome): void;
  reject(err: unknown): void;
}

/**
 * Group commit for the single-record endpoints. While fewer than `maxInFlight` write
 * transactions are running, a request gets its own transaction at once (no added latency when
 * the worker is idle). Once all slots are busy, new requests queue; each freed slot takes up to
 * `maxGroup` of them into one transaction through the normal commit path (`commitItems`), so under
 * load a worker pays BEGIN/COMMIT, the WAL flush, and one `appendEvents` per scope once per group
 * instead of once per write, and publishes one bus message per scope per group.
 *
 * Guarantees are those of a single write:
 * - Each mutation still commits with exactly its own event, and its answer is its own.
 * - If the shared transaction fails because of one member (a 404, 409, 403, key conflict...),
 *   it rolls back as a whole and every member is retried in its own transaction, so each client
 *   gets the answer it would have got alone and one bad request cannot fail its neighbours.
 *   A database outage is not retried member by member: all of them get the 503.
 * - Two queued requests with the same (subject, idempotency key) never share a group (the later
 *   one waits for the next), so the claim protocol still sees them as two transactions and writes
 *   once.
 */
export function createGroupCommitter(deps: CommitDeps, options: GroupCommitOptions): GroupCommitter {
  const queue: Pending[] = [];
  let inFlight = 0;

  const takeGroup = (): Pending[] => {
    const group: Pending[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < queue.length && group.length < options.maxGroup; ) {
      const pending = queue[i]!;
      const key = pending.item.mutation.mutationId;
      const id = key ? `${pending.item.principal.sub}\u0000${key}` : undefined;
      if (id !== undefined && keys.has(id)) {
        i++;
        continue;
      }
      if (id !== undefined) keys.add(id);
      group.push(pending);
      queue.splice(i, 1);
    }
    return group;
  };

  const commitAlone = async (pending: Pending) => {
    try {
      const [outcome] = await commitItems(deps, [pending.item]);
      pending.resolve(outcome!);
    } catch (err) {
      pending.reject(err);
    }
  };

  const runGroup = async (group: Pending[]) => {
    if (group.length === 1) return commitAlone(group[0]!);
    try {
      const outcomes = await commitItems(
        deps,
        group.map((p) => p.item),
      );
      group.forEach((pending, i) => {
        pending.resolve(outcomes[i]!);
      });
    } catch (err) {
      if (toAppError(err).code === 'unavailable') {
        for (const pending of group) pending.reject(err);
        return;
      }
      await Promise.all(group.map(commitAlone));
    }
  };

  const pump = () => {
    while (inFlight < options.maxInFlight && queue.length > 0) {
      const group = takeGroup();
      inFlight++;
      void runGroup(group).finally(() => {
        inFlight--;
        pump();
      });
    }
    deps.metrics.commitQueue.set(queue.length);
  };

  return {
    commit(principal, mutation) {
      if (options.maxGroup <= 1) {
        return commitItems(deps, [{ principal, mutation }]).then(([outcome]) => outcome!);
      }
      return new Promise<MutationOutcome>((resolve, reject) => {
        queue.push({ item: { principal, mutation }, resolve, reject });
        pump();
      });
    },
    queued: () => queue.length,
  };
}
