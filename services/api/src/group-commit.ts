import { toAppError } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';
import {
  type CommitDeps,
  type CommitMember,
  commitGroup,
  type MemberAnswer,
  type MutationOutcome,
} from './commit';
import type { PlannedMutation } from './mutation-plan';

export interface CommitPipelineOptions {
  /** Most requests committed in one transaction; 1 turns grouping off. */
  maxGroup: number;
  /** Most mutations in one transaction (a batch request counts all its entries). */
  maxGroupMutations: number;
  /** Transactions of this worker in flight at once. */
  depth: number;
}

/**
 * maxGroup 32: each member is a subtransaction, and Postgres keeps up to 64 subtransaction ids
 * per backend in shared memory before snapshots of every other session get slower; 32 leaves
 * room, and a group of 32 already amortises a commit's fixed cost (one WAL flush, one round
 * trip) to a few percent. depth 2: one group commits while the next one fills; more groups in
 * flight only split the same writes into smaller transactions (see docs/benchmarks.md).
 */
export const COMMIT_PIPELINE_DEFAULTS: CommitPipelineOptions = {
  maxGroup: 32,
  maxGroupMutations: 1000,
  depth: 2,
};

/** Joins concurrent writes of this worker into shared transactions. */
export interface CommitPipeline {
  /** Commits one request's mutations (one, or a batch: all or none) and answers them in order. */
  commit(member: CommitMember): Promise<MutationOutcome[]>;
  /** Requests waiting for a transaction. */
  queued(): number;
}

interface Waiting {
  member: CommitMember;
  /** Expected scopes of its mutations (creates always; updates/deletes when the cache knows). */
  scopes: string[];
  /** (subject, idempotency key) of its keyed mutations. */
  keys: string[];
  resolve(outcomes: MutationOutcome[]): void;
  reject(err: unknown): void;
}

/** SQLSTATEs for which Postgres rolled the whole group back and the same group may simply run again. */
const RETRY_GROUP = new Set(['40001', '40P01']);

/**
 * The commit pipeline: every worker collects the writes that arrive while its transactions are in
 * flight — any scope, any action, single records and batches — and commits them together.
 *
 * - A write that arrives while fewer than `depth` transactions are in flight starts one at once:
 *   a lone write is never delayed, and never waits for a timer.
 * - Otherwise it waits; when a transaction commits, everything that waits (up to `maxGroup`
 *   requests and `maxGroupMutations` mutations, in arrival order) becomes the next one. The added
 *   latency is therefore bounded by one transaction of at most that size.
 * - A write whose scope a transaction in flight is writing waits for that transaction instead of
 *   joining another one: the second would only queue on the scope's head row lock in Postgres,
 *   holding a pooled connection. Writes to a hot scope so collect in memory and commit together.
 *   The scope of an update or delete is learned from its first commit (scopes never change) and
 *   cached, so a stream of PATCHes to one record groups like creates do.
 * - Two requests with the same (subject, idempotency key) never share a transaction (the later
 *   one waits for the next), so the claim protocol still writes once.
 *
 * Each member gets exactly the answer it would have had alone: `sync_commit` runs every member in
 * its own subtransaction (see commit.ts). If the whole statement fails, a deadlock or
 * serialization failure runs the same group again (up to 3 times); a database outage answers
 * every member with the 503; anything else retries each member in its own transaction, so one
 * unexpected failure cannot take the others down with it.
 */
export function createCommitPipeline(deps: CommitDeps, options: CommitPipelineOptions): CommitPipeline {
  const queue: Waiting[] = [];
  /** Scopes written by transactions in flight, with how many of them write each. */
  const busy = new Map<string, number>();
  const knownScopes = new LRUCache<string, string>({ max: 100_000 });
  let inFlight = 0;

  const recordKey = (m: PlannedMutation) => `${m.model}\u0000${m.id}`;
  const expectedScope = (m: PlannedMutation) => m.scope ?? knownScopes.get(recordKey(m)) ?? null;

  const remember = (member: CommitMember, outcomes: MutationOutcome[]) => {
    member.mutations.forEach((m, i) => {
      const outcome = outcomes[i];
      if (!outcome) return;
      if (m.action === 'delete') knownScopes.delete(recordKey(m));
      else knownScopes.set(recordKey(m), outcome.body.scope);
    });
  };

  const settle = (waiting: Waiting, answer: MemberAnswer) => {
    if (answer.ok) {
      remember(waiting.member, answer.outcomes);
      waiting.resolve(answer.outcomes);
    } else waiting.reject(answer.error);
  };

  const runAlone = async (waiting: Waiting) => {
    try {
      const [answer] = await commitGroup(deps, [waiting.member]);
      settle(waiting, answer!);
    } catch (err) {
      waiting.reject(err);
    }
  };

  /** `release` frees the group's pipeline slot and scopes: once committed, or at the very end. */
  const runGroup = async (group: Waiting[], release: () => void) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const answers = await commitGroup(
          deps,
          group.map((w) => w.member),
          release,
        );
        group.forEach((waiting, i) => {
          settle(waiting, answers[i]!);
        });
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt < 3 && code !== undefined && RETRY_GROUP.has(code)) continue;
        if (group.length === 1 || toAppError(err).code === 'unavailable') {
          for (const waiting of group) waiting.reject(err);
          return;
        }
        for (const waiting of group) await runAlone(waiting);
        return;
      }
    }
  };

  /** The next group: waiting requests in arrival order whose scopes and keys are free. */
  const takeGroup = (): Waiting[] => {
    const group: Waiting[] = [];
    const keys = new Set<string>();
    let mutations = 0;
    for (let i = 0; i < queue.length && group.length < options.maxGroup; ) {
      const waiting = queue[i]!;
      const size = waiting.member.mutations.length;
      const blocked =
        waiting.scopes.some((s) => busy.has(s)) ||
        waiting.keys.some((k) => keys.has(k)) ||
        (group.length > 0 && mutations + size > options.maxGroupMutations);
      if (blocked) {
        i++;
        continue;
      }
      for (const k of waiting.keys) keys.add(k);
      mutations += size;
      group.push(waiting);
      queue.splice(i, 1);
    }
    deps.metrics.commitQueue.set(queue.length);
    return group;
  };

  const pump = () => {
    while (inFlight < options.depth && queue.length > 0) {
      const group = takeGroup();
      if (group.length === 0) return;
      const scopes = new Set(group.flatMap((w) => w.scopes));
      for (const s of scopes) busy.set(s, (busy.get(s) ?? 0) + 1);
      inFlight++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        inFlight--;
        for (const s of scopes) {
          const n = busy.get(s)! - 1;
          if (n === 0) busy.delete(s);
          else busy.set(s, n);
        }
        pump();
      };
      void runGroup(group, release).finally(release);
    }
  };

  return {
    commit(member) {
      if (options.maxGroup <= 1) {
        return commitGroup(deps, [member]).then(([answer]) => {
          if (!answer!.ok) throw answer!.error;
          return answer!.outcomes;
        });
      }
      return new Promise<MutationOutcome[]>((resolve, reject) => {
        const scopes = new Set<string>();
        const keys: string[] = [];
        for (const m of member.mutations) {
          const scope = expectedScope(m);
          if (scope) scopes.add(scope);
          if (m.mutationId) keys.push(`${member.principal.sub}\u0000${m.mutationId}`);
        }
        const mutations = member.mutations.map((m) => (m.scope ? m : { ...m, scope: expectedScope(m) }));
        queue.push({ member: { ...member, mutations }, scopes: [...scopes], keys, resolve, reject });
        deps.metrics.commitQueue.set(queue.length);
        pump();
      });
    },
    queued: () => queue.length,
  };
}
