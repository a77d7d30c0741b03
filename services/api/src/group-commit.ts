import { toAppError } from '@openagents/sync-server-kit';
import { LRUCache } from 'lru-cache';
import {
  type CommitDeps,
  type CommitMember,
  type CommittedGroup,
  commitGroupUnpublished,
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
  /**
   * A second (third...) transaction starts beside one in flight only once the oldest in flight
   * has taken this many times the recent typical commit, or when a full group waits.
   */
  overlapAfter: number;
  /** ... and never before this many milliseconds ... */
  overlapMinMs: number;
  /** ... and always after this many (a commit that waited long must not make "late" late for long). */
  overlapMaxMs: number;
  /**
   * Commits whose publishes the bus has not acknowledged yet beyond which writes asking to be
   * answered at commit wait for their publishes after all: back-pressure against a slow bus.
   */
  maxUnpublished: number;
}

/**
 * When a write is answered: once its transaction committed (`commit`; its publishes are issued
 * then and acknowledged in the background), or once the bus acknowledged them (`publish`).
 */
export type AnswerAfter = 'commit' | 'publish';

/**
 * maxGroup 32: each member is a subtransaction, and Postgres keeps up to 64 subtransaction ids
 * per backend in shared memory before snapshots of every other session get slower; 32 leaves
 * room, and a group of 32 already amortises a commit's fixed cost (one WAL flush, one round
 * trip) to a few percent. depth 2, adaptive: one group commits while the next one fills, and a
 * second transaction starts beside it only when the first is late (twice the recent typical
 * commit, 2 to 50 ms: waiting on a lock another worker holds, or on a slow disk) or a full
 * group waits. Two groups always in flight split the same writes into transactions half as big,
 * which costs CPU per write on both sides and lost 15-25 % of the rate at 16 clients (see
 * docs/benchmarks.md); more groups in flight only split them further.
 */
export const COMMIT_PIPELINE_DEFAULTS: CommitPipelineOptions = {
  maxGroup: 32,
  maxGroupMutations: 1000,
  depth: 2,
  overlapAfter: 2,
  overlapMinMs: 2,
  overlapMaxMs: 50,
  maxUnpublished: 256,
};

/** Weight of the newest commit in the running "typical commit" (an exponential moving average). */
const TYPICAL_WEIGHT = 0.1;

/** Joins concurrent writes of this worker into shared transactions. */
export interface CommitPipeline {
  /**
   * Commits one request's mutations (one, or a batch: all or none) and answers them in order.
   * `onCommitted`, if given, is called once they are committed, before the answer: a streamed
   * reply may send its next commit then. `answerAfter` (default `publish`): whether the answer
   * also waits for the bus to acknowledge the publishes. `commit` answers without that Redis
   * round trip — the publishes are already issued, in commit order, before the answer — unless
   * more than `maxUnpublished` commits of this worker are still unacknowledged.
   */
  commit(
    member: CommitMember,
    onCommitted?: () => void,
    answerAfter?: AnswerAfter,
  ): Promise<MutationOutcome[]>;
  /** Requests waiting for a transaction. */
  queued(): number;
}

interface Waiting {
  /** The member as committed: every mutation's scope filled in where the cache knew it. */
  member: CommitMember;
  /** The mutations as the caller gave them (the same array when each one named its scope). */
  given: CommitMember['mutations'];
  /** Expected scopes of its mutations (creates always; updates/deletes when the cache knows). */
  scopes: string[];
  /** (subject, idempotency key) of its keyed mutations. */
  keys: string[];
  /** Called once its mutations are committed, before the answer. */
  committed: (() => void) | undefined;
  answerAfter: AnswerAfter;
  resolve(outcomes: MutationOutcome[]): void;
  reject(err: unknown): void;
}

/** SQLSTATEs for which Postgres rolled the whole group back and the same group may simply run again. */
const RETRY_GROUP = new Set(['40001', '40P01']);

/**
 * The commit pipeline: every worker collects the writes that arrive while its transactions are in
 * flight — any scope, any action, single records and batches — and commits them together.
 *
 * - A write that arrives while no transaction is in flight starts one at once: a lone write is
 *   never delayed, and never waits for a timer.
 * - Otherwise it waits; when a transaction commits, everything that waits (up to `maxGroup`
 *   requests and `maxGroupMutations` mutations, in arrival order) becomes the next one. The added
 *   latency is therefore bounded by one transaction of at most that size.
 * - While fewer than `depth` transactions are in flight, the waiting writes start another one
 *   beside them as soon as the oldest in flight is late — in flight `overlapAfter` times longer
 *   than the recent typical commit (a moving average), at least `overlapMinMs` and at most
 *   `overlapMaxMs` — or a full group waits. A transaction stuck on a lock (another worker's, an
 *   outside one) or on a slow flush so never holds up the other scopes of the worker for longer
 *   than that, while in steady load the writes that gather during one commit go together in the
 *   next, as big a group as they can.
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
  /** When each transaction in flight started (performance.now()), oldest first. */
  const started: number[] = [];
  /** The recent typical commit, ms (moving average of start-to-COMMIT times). */
  let typicalMs = 0;
  /** Armed while writes wait beside a transaction in flight: fires when that one is late. */
  let lateTimer: ReturnType<typeof setTimeout> | undefined;
  const lateAfterMs = () =>
    Math.min(options.overlapMaxMs, Math.max(options.overlapMinMs, options.overlapAfter * typicalMs));

  const recordKey = (m: PlannedMutation) => `${m.model}\u0000${m.id}`;

  /**
   * Learns the scopes of the records written. An append whose caller named its scope (a streamed
   * reply knows it after its first commit) needs no entry: it never asks the cache, and a worker
   * streaming hundreds of replies would otherwise pay an LRU update per append per commit.
   */
  const remember = (given: CommitMember['mutations'], outcomes: MutationOutcome[]) => {
    for (let i = 0; i < given.length; i++) {
      const m = given[i]!;
      const outcome = outcomes[i];
      if (!outcome || (m.action === 'append' && m.scope !== null)) continue;
      if (m.action === 'delete') knownScopes.delete(recordKey(m));
      else knownScopes.set(recordKey(m), outcome.body.scope);
    }
  };

  const settle = (waiting: Waiting, answer: MemberAnswer) => {
    if (answer.ok) {
      remember(waiting.given, answer.outcomes);
      waiting.resolve(answer.outcomes);
    } else waiting.reject(answer.error);
  };

  /** Commits whose publishes are not acknowledged yet. */
  let unpublished = 0;

  /**
   * Answers a committed group: those asking to be answered at commit now (unless the bus is
   * behind by more than `maxUnpublished` commits), the others once the publishes settled.
   */
  const answerGroup = async (group: readonly Waiting[], { answers, published }: CommittedGroup) => {
    unpublished++;
    void published.finally(() => {
      unpublished--;
    });
    const atCommit = unpublished <= options.maxUnpublished;
    let later = false;
    group.forEach((waiting, i) => {
      if (atCommit && waiting.answerAfter === 'commit') settle(waiting, answers[i]!);
      else later = true;
    });
    if (!later) return;
    await published;
    group.forEach((waiting, i) => {
      if (!atCommit || waiting.answerAfter !== 'commit') settle(waiting, answers[i]!);
    });
  };

  const runAlone = async (waiting: Waiting) => {
    try {
      const committed = await commitGroupUnpublished(deps, [waiting.member], ([ok]) => {
        if (ok) waiting.committed?.();
      });
      await answerGroup([waiting], committed);
    } catch (err) {
      waiting.reject(err);
    }
  };

  /** `release` frees the group's pipeline slot and scopes: once committed, or at the very end. */
  const runGroup = async (group: Waiting[], release: () => void) => {
    for (let attempt = 1; ; attempt++) {
      let committed: CommittedGroup;
      try {
        committed = await commitGroupUnpublished(
          deps,
          group.map((w) => w.member),
          (ok) => {
            release();
            group.forEach((waiting, i) => {
              if (ok[i]) waiting.committed?.();
            });
          },
        );
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
      // Outside the try: the group has committed, nothing may run it again.
      await answerGroup(group, committed);
      return;
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

  /** Whether waiting writes may start a transaction now, beside those in flight. */
  const mayStart = (now: number): boolean => {
    if (inFlight === 0) return true;
    if (inFlight >= options.depth) return false;
    if (queue.length >= options.maxGroup) return true;
    return now - started[0]! >= lateAfterMs();
  };

  /** Re-runs `pump` when the oldest transaction in flight becomes late, if writes still wait. */
  const armLateTimer = (now: number) => {
    if (lateTimer !== undefined || inFlight === 0 || inFlight >= options.depth || queue.length === 0) return;
    lateTimer = setTimeout(
      () => {
        lateTimer = undefined;
        pump();
      },
      Math.max(0, started[0]! + lateAfterMs() - now),
    );
    lateTimer.unref?.();
  };

  const pump = () => {
    const now = performance.now();
    while (queue.length > 0 && mayStart(now)) {
      const group = takeGroup();
      // Every waiting write is blocked on a scope or key in flight: the next release pumps again.
      if (group.length === 0) return;
      const scopes = new Set(group.flatMap((w) => w.scopes));
      for (const s of scopes) busy.set(s, (busy.get(s) ?? 0) + 1);
      inFlight++;
      const startedAt = performance.now();
      started.push(startedAt);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        inFlight--;
        started.splice(started.indexOf(startedAt), 1);
        const took = performance.now() - startedAt;
        typicalMs = typicalMs === 0 ? took : typicalMs + TYPICAL_WEIGHT * (took - typicalMs);
        for (const s of scopes) {
          const n = busy.get(s)! - 1;
          if (n === 0) busy.delete(s);
          else busy.set(s, n);
        }
        if (lateTimer !== undefined) {
          clearTimeout(lateTimer);
          lateTimer = undefined;
        }
        pump();
      };
      void runGroup(group, release).finally(release);
    }
    armLateTimer(now);
  };

  return {
    commit(member, onCommitted, answerAfter = 'publish') {
      if (options.maxGroup <= 1) {
        return new Promise<MutationOutcome[]>((resolve, reject) => {
          const waiting: Waiting = {
            member,
            given: member.mutations,
            scopes: [],
            keys: [],
            committed: onCommitted,
            answerAfter,
            resolve,
            reject,
          };
          void runAlone(waiting);
        });
      }
      return new Promise<MutationOutcome[]>((resolve, reject) => {
        const given = member.mutations;
        const scopes = new Set<string>();
        const keys: string[] = [];
        // Copied only where a scope comes from the cache: the append batcher's joined members
        // (hundreds of appends, each naming its scope) go through as they are.
        let mutations: PlannedMutation[] | undefined;
        for (let i = 0; i < given.length; i++) {
          const m = given[i]!;
          let scope = m.scope;
          if (scope === null) {
            scope = knownScopes.get(recordKey(m)) ?? null;
            mutations ??= given.slice();
            mutations[i] = { ...m, scope };
          }
          if (scope) scopes.add(scope);
          if (m.mutationId) keys.push(`${member.principal.sub}\u0000${m.mutationId}`);
        }
        queue.push({
          member: mutations ? { ...member, mutations } : member,
          given,
          scopes: [...scopes],
          keys,
          committed: onCommitted,
          answerAfter,
          resolve,
          reject,
        });
        deps.metrics.commitQueue.set(queue.length);
        pump();
      });
    },
    queued: () => queue.length,
  };
}
