import { scopeOf } from '@openagents/sync-protocol';
import type { Principal } from '@openagents/sync-server-kit';
import { toAppError } from '@openagents/sync-server-kit';
import { type CommitDeps, type CommitItem, commitItems, type MutationOutcome } from './commit';
import type { PlannedMutation } from './mutation-plan';

export interface GroupCommitOptions {
  /** Most creates of one scope joined into one transaction; 1 turns grouping off. */
  maxGroup: number;
}

export const GROUP_COMMIT_DEFAULTS: GroupCommitOptions = { maxGroup: 32 };

/** Joins concurrent creates of the same scope into shared transactions. */
export interface GroupCommitter {
  /** Commits one mutation, alone or with others of its scope that wait at the same time. */
  commit(principal: Principal, mutation: PlannedMutation): Promise<MutationOutcome>;
  /** Mutations waiting behind a running transaction of their scope. */
  queued(): number;
}

interface Pending {
  item: CommitItem;
  resolve(outcome: MutationOutcome): void;
  reject(err: unknown): void;
}

interface ScopeLane {
  running: boolean;
  queue: Pending[];
}

/**
 * Group commit per scope, for the single-record creates.
 *
 * Writes to one scope are serial no matter what: each holds the scope's head row lock from its
 * `appendEvents` to its COMMIT (that is what keeps ids gap-free). Without grouping, a burst on a
 * hot scope (one busy agent) becomes a line of transactions each waiting in Postgres for the lock
 * while holding a pooled connection, and each paying its own WAL flush while the others wait. So
 * the worker lines them up in memory instead: while a transaction of scope S runs, further creates
 * for S wait here, and when it ends, up to `maxGroup` of them commit together in one transaction
 * (one BEGIN/COMMIT, one `appendEvents`, one bus message). A create for an idle scope starts at
 * once — no added latency — and different scopes never wait for each other.
 *
 * Only creates are grouped: their scope is known from the body. Updates and deletes learn their
 * scope from the stored row, so they commit on their own.
 *
 * Guarantees are those of a single write:
 * - Each mutation commits with exactly its own event, and gets its own answer.
 * - If a shared transaction fails because of one member (a missing agent, a duplicate id, a key
 *   conflict...), it rolls back as a whole and every member is retried in its own transaction,
 *   so each client gets the answer it would have had alone. A database outage is not retried
 *   member by member: all of them get the 503.
 * - Two requests with the same (subject, idempotency key) never share a transaction (the later
 *   one waits for the next), so the claim protocol still writes once.
 */
export function createGroupCommitter(deps: CommitDeps, options: GroupCommitOptions): GroupCommitter {
  const lanes = new Map<string, ScopeLane>();
  let waiting = 0;

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

  /** The next group of a lane: up to maxGroup, in arrival order, no (subject, key) twice. */
  const takeGroup = (lane: ScopeLane): Pending[] => {
    const group: Pending[] = [];
    const keys = new Set<string>();
    for (let i = 0; i < lane.queue.length && group.length < options.maxGroup; ) {
      const pending = lane.queue[i]!;
      const key = pending.item.mutation.mutationId;
      const id = key ? `${pending.item.principal.sub}\u0000${key}` : undefined;
      if (id !== undefined && keys.has(id)) {
        i++;
        continue;
      }
      if (id !== undefined) keys.add(id);
      group.push(pending);
      lane.queue.splice(i, 1);
    }
    waiting -= group.length;
    deps.metrics.commitQueue.set(waiting);
    return group;
  };

  const drainLane = async (scope: string, lane: ScopeLane) => {
    while (lane.queue.length > 0) await runGroup(takeGroup(lane));
    lane.running = false;
    lanes.delete(scope);
  };

  return {
    commit(principal, mutation) {
      if (options.maxGroup <= 1 || mutation.action !== 'insert') {
        return commitItems(deps, [{ principal, mutation }]).then(([outcome]) => outcome!);
      }
      const scope = scopeOf(mutation.model, mutation.values);
      return new Promise<MutationOutcome>((resolve, reject) => {
        let lane = lanes.get(scope);
        if (!lane) {
          lane = { running: false, queue: [] };
          lanes.set(scope, lane);
        }
        lane.queue.push({ item: { principal, mutation }, resolve, reject });
        waiting++;
        deps.metrics.commitQueue.set(waiting);
        if (!lane.running) {
          lane.running = true;
          void drainLane(scope, lane);
        }
      });
    },
    queued: () => waiting,
  };
}
