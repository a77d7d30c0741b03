import {
  type ModelName,
  type SyncEvent,
  scopeAllowed,
  unreachable,
  type WriteResult,
} from '@openagents/sync-protocol';
import { AppError, type Bus, type Logger, type Pool, type Principal } from '@openagents/sync-server-kit';
import type { ApiMetrics } from './metrics';
import type { FieldIssue, PlannedMutation } from './mutation-plan';
import { type CommitMemberInput, type MemberResult, runCommitGroup, selectRecordScope } from './store';
import type { StreamTracer } from './stream-trace';

/** What one mutation answered: the HTTP status it travels with, the body, and whether it was replayed. */
export interface MutationOutcome {
  status: 200 | 201;
  body: WriteResult;
  replayed: boolean;
}

export interface CommitDeps {
  pool: Pool;
  bus: Bus;
  log: Logger;
  metrics: ApiMetrics;
  /** Bench only: stage times of traced streamed pieces (stream-trace.ts). */
  trace?: StreamTracer | undefined;
}

/**
 * One request's writes and who asks for them: the unit the commit path works on. A single-record
 * write is a member of one mutation; a batch is a member of many that commit all or none.
 */
export interface CommitMember {
  principal: Principal;
  mutations: readonly PlannedMutation[];
}

/** A member's answer: its outcomes, one per mutation in order, or the error it would have had alone. */
export type MemberAnswer = { ok: true; outcomes: MutationOutcome[] } | { ok: false; error: unknown };

/**
 * The commit path. Commits `members` (already validated) in ONE Postgres transaction, which is
 * ONE statement, the `sync_commit` function (packages/server-kit/migrations): one round trip and
 * one WAL flush however many members the group has. For each member, in order, inside its own
 * subtransaction:
 *
 * 1. Claim each idempotency key. A key some earlier request committed is answered from its stored
 *    response (same request hash, and only if the token still grants the stored response's
 *    scope) or refused with 409 (different hash); that mutation writes nothing. A concurrent
 *    transaction holding the same key makes the claim wait until it ends, so duplicates racing
 *    each other still write once.
 * 2. Write the records, deriving each one's scope from the stored row (RETURNING), checking it
 *    against the token and cross-record integrity on the way, and take the next id of that
 *    scope's log for its event.
 *
 * A member that fails rolls back alone (record, claim, ids) and gets its error; the others go
 * on, each answered exactly as if it had committed alone in member order. Then, once for the
 * group: the scope heads move (they were locked first, in sorted scope order, so two groups
 * cannot deadlock on them), the events are inserted, the responses of the claimed keys are
 * stored, and the statement commits.
 *
 * `onCommitted` is called once the statement has committed and the group's publishes have been
 * handed to the bus, before they are acknowledged, with whether each member committed (its writes
 * are in): the commit pipeline starts its next transaction then, and a streamed reply its next
 * commit, instead of after a Redis round trip.
 *
 * Only after COMMIT are the events published, one message per scope. A failed publish does not
 * fail the write: the log is the truth and gateways catch up from it; it is counted in
 * `sync_bus_publish_failures_total`. An error of the whole statement (database down, deadlock)
 * leaves nothing behind: no record, no event, no idempotency row. The answers are returned once
 * the bus acknowledged the publishes (see `commitGroupUnpublished` for answers at commit).
 */
export async function commitGroup(
  deps: CommitDeps,
  members: readonly CommitMember[],
  onCommitted?: (committed: readonly boolean[]) => void,
): Promise<MemberAnswer[]> {
  const { answers, published } = await commitGroupUnpublished(deps, members, onCommitted);
  await published;
  return answers;
}

/** A committed group's answers, and its publishes. */
export interface CommittedGroup {
  /** One per member, in order. */
  answers: MemberAnswer[];
  /**
   * Settles once the bus acknowledged the group's publishes or gave up on them (a failure is
   * counted and logged, never thrown: the log is the truth).
   */
  published: Promise<void>;
}

/**
 * `commitGroup` without waiting for the bus: the answers are returned once the statement has
 * committed (and any foreign-key refusal was re-read), beside the pending publishes. The commit
 * pipeline answers single HTTP writes this way, taking the Redis round trip off their latency.
 */
export async function commitGroupUnpublished(
  deps: CommitDeps,
  members: readonly CommitMember[],
  onCommitted?: (committed: readonly boolean[]) => void,
): Promise<CommittedGroup> {
  const started = performance.now();
  const { results, events } = await runCommitGroup(deps.pool, members.map(toInput), expectedScopes(members));
  deps.metrics.commitDuration.observe((performance.now() - started) / 1000);
  deps.metrics.commitSize.observe(members.reduce((n, m) => n + m.mutations.length, 0));
  deps.trace?.events('committed', events);
  // The publishes are issued (written to the bus connection, in commit order) before
  // `onCommitted` lets the next transaction of these scopes start.
  const published = publishCommitted(deps, events);
  deps.trace?.events('published', events);
  // The statement has committed: a throwing callback must not fail the group, which the pipeline
  // would then answer with an error or run again member by member, writing it a second time.
  try {
    onCommitted?.(results.map((r) => 'ok' in r));
  } catch (err) {
    deps.log.error({ err }, 'a commit callback threw after COMMIT; the writes are committed');
  }
  // Only a foreign-key refusal needs another read (below); every other answer is ready.
  if (!results.some((r) => 'err' in r && r.err.state === '23503')) {
    return { answers: results.map((result, i) => toAnswer(result, members[i]!)), published };
  }
  // The statement has committed: a failing re-read answers its own member (whose mutation rolled
  // back, so a retry is safe) and must not fail the group, which the pipeline would then run
  // again member by member, writing the committed members a second time.
  const answers = await Promise.all(
    results.map(async (result, i): Promise<MemberAnswer> => {
      const member = members[i]!;
      try {
        return (await foreignReferenced(deps.pool, result, member)) ?? toAnswer(result, member);
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
  return { answers, published };
}

/**
 * A delete or update refused by a foreign key (409 "still referenced", 404 "referenced Message
 * does not exist") of a record in a scope the token does not grant answers 403 like any other
 * foreign record: `sync_commit` writes before it checks the row's scope, so the key spoke first
 * and told a stranger about another scope's records (found by test/hostile.stack.test.ts). Only
 * this error path pays the extra read.
 */
async function foreignReferenced(
  pool: Pool,
  result: MemberResult,
  member: CommitMember,
): Promise<MemberAnswer | undefined> {
  if ('ok' in result || result.err.state !== '23503') return undefined;
  const mutation = member.mutations[result.at]!;
  if (mutation.action !== 'delete' && mutation.action !== 'update') return undefined;
  const scope = await selectRecordScope(pool, mutation.def, mutation.id);
  if (scope === null || scopeAllowed(member.principal.scopes.map(canonicalPattern), scope)) return undefined;
  return { ok: false, error: memberError({ ...result.err, message: 'forbidden', detail: scope }, mutation) };
}

/** Commits one request's mutations on their own; throws the error the request answers with. */
export async function commitMutations(
  deps: CommitDeps,
  principal: Principal,
  mutations: readonly PlannedMutation[],
): Promise<MutationOutcome[]> {
  const [answer] = await commitGroup(deps, [{ principal, mutations }]);
  if (!answer!.ok) throw answer!.error;
  return answer!.outcomes;
}

/**
 * The scopes a group is expected to write, sorted: those of its creates (from the values, whose
 * uuids are already canonical) and of the updates and deletes whose scope `predicted` names. The
 * function locks these heads first, in this order; a scope found only on the way is locked then.
 */
export function expectedScopes(members: readonly CommitMember[]): string[] {
  const scopes = new Set<string>();
  for (const member of members) for (const m of member.mutations) if (m.scope) scopes.add(m.scope);
  return [...scopes].sort();
}

/** What `sync_commit` gets as `v`: values of an insert, fields of an update, the piece of an append. */
function mutationData(m: PlannedMutation): Record<string, unknown> | null {
  switch (m.action) {
    case 'insert':
      return m.values;
    case 'update':
      return m.fields;
    case 'append':
      return { ...m.append };
    case 'delete':
      return null;
    default:
      return unreachable(m);
  }
}

function toInput(member: CommitMember): CommitMemberInput {
  return {
    sub: member.principal.sub,
    scopes: member.principal.scopes.map(canonicalPattern),
    muts: member.mutations.map((m) => ({
      m: m.model,
      a: m.action,
      id: m.id,
      v: mutationData(m),
      k: m.mutationId,
      h: m.requestHash,
    })),
  };
}

/**
 * A token's scope pattern in the canonical form of stored scopes: the ids of `org:` and `agent:`
 * scopes are uuids, stored lowercase, so a pattern naming one in capitals still matches it.
 */
export function canonicalPattern(pattern: string): string {
  return /^(org|agent):/i.test(pattern) ? pattern.toLowerCase() : pattern;
}

function toAnswer(result: MemberResult, member: CommitMember): MemberAnswer {
  if ('ok' in result) {
    // `sync_commit` builds each outcome with exactly these three keys: no copy needed.
    return { ok: true, outcomes: result.ok };
  }
  const mutation = member.mutations[result.at]!;
  return { ok: false, error: memberError(result.err, mutation) };
}

/** The failure `sync_commit` reported for one mutation, as the answer the client gets. */
function memberError(
  err: { state: string; message: string; detail: string; constraint: string },
  mutation: PlannedMutation,
): unknown {
  const { model, at } = mutation;
  const data = mutationData(mutation) ?? {};
  switch (err.message) {
    case 'not_found':
      return new AppError('not_found', `No ${model} with id ${mutation.id}`, {
        details: [{ path: at.id, message: `no ${model} with this id` }],
      });
    case 'conflict':
      return new AppError('conflict', `A ${model} with this id already exists`, {
        details: [{ path: at.data ? `${at.data}id` : 'id', message: 'already exists', id: mutation.id }],
      });
    case 'forbidden':
    case 'replay_forbidden': {
      const path =
        err.message === 'replay_forbidden'
          ? at.key
          : mutation.action === 'insert'
            ? at.data + mutation.def.scope.field
            : at.id;
      return new AppError('forbidden', `Token does not grant scope ${err.detail}`, {
        details: [{ path, message: `scope ${err.detail} is not granted by the token`, scope: err.detail }],
      });
    }
    case 'agent_missing':
      return referenceMissing('Agent', `${at.data}agent_id`, data.agent_id);
    case 'message_missing':
      return referenceMissing('Message', `${at.data}message_id`, data.message_id);
    case 'agent_other_org':
      return new AppError('invalid_body', 'The agent belongs to another org', {
        details: [{ path: `${at.data}agent_id`, message: 'must be an agent of the same org' }],
      });
    case 'message_other_agent':
      return new AppError('invalid_body', 'The message belongs to another agent', {
        details: [{ path: `${at.data}message_id`, message: 'must be a message of the same agent' }],
      });
    case 'offset_mismatch':
      return new AppError('offset_mismatch', 'The offset is not the current length of the field', {
        details: { length: Number(err.detail), path: `${at.data}offset` },
      });
    case 'idempotency_conflict':
      return new AppError('idempotency_conflict', 'This idempotency key was used with a different request', {
        details: [{ path: at.key, message: 'already used with a different request' }],
      });
    default:
      return (
        fromConstraintError(err, mutation) ??
        Object.assign(new Error(`commit failed: ${err.message}`), { code: err.state })
      );
  }
}

function referenceMissing(model: ModelName, path: string, id: unknown): AppError {
  return new AppError('not_found', `The referenced ${model} does not exist`, {
    details: [{ path, message: `no ${model} with id ${String(id)}` } satisfies FieldIssue],
  });
}

/** Foreign-key constraint name → the column it guards, e.g. `messages_agent_id_fkey` → agent_id. */
const FK_COLUMN = /_(agent_id|message_id)_fkey$/;
const FK_MODEL: Record<string, ModelName> = { agent_id: 'Agent', message_id: 'Message' };

/**
 * Turns the foreign-key violations Postgres raises into answers: on insert/update a missing
 * parent is a 404 naming the field; on delete a record still referenced is a 409 (RESTRICT: a
 * cascade would change rows without writing their events).
 */
function fromConstraintError(
  err: { state: string; constraint: string },
  mutation: PlannedMutation,
): AppError | undefined {
  if (err.state !== '23503') return undefined;
  if (mutation.action === 'delete') {
    return new AppError('conflict', `The ${mutation.model} is still referenced by other records`, {
      details: [
        {
          path: mutation.at.id,
          message: `still referenced (${err.constraint || 'foreign key'}); delete those records first`,
        },
      ],
    });
  }
  const column = FK_COLUMN.exec(err.constraint)?.[1];
  if (!column) return undefined;
  const value = mutationData(mutation)?.[column];
  return referenceMissing(FK_MODEL[column]!, mutation.at.data + column, value);
}

/**
 * Publishes one message per scope. The publishes are issued together (the Redis bus writes them in
 * one pipelined write) and timed together: `sync_bus_publish_duration_seconds` observes one
 * commit's publishes, not each scope's, which with hundreds of streamed replies (each its own
 * scope) per commit was a clock read and a histogram update per reply per commit.
 */
async function publishCommitted(deps: CommitDeps, events: readonly SyncEvent[]): Promise<void> {
  if (events.length === 0) return;
  const byScope = new Map<string, SyncEvent[]>();
  for (const event of events) {
    const list = byScope.get(event.scope);
    if (list) list.push(event);
    else byScope.set(event.scope, [event]);
  }
  const started = performance.now();
  const publishes: Promise<void>[] = [];
  for (const [scope, scoped] of byScope) {
    let published: Promise<void>;
    try {
      published = deps.bus.publish({ scope, events: scoped });
    } catch (err) {
      published = Promise.reject(err);
    }
    publishes.push(
      published.catch((err: unknown) => {
        deps.metrics.publishFailures.inc();
        deps.log.warn(
          { scope, lastId: scoped.at(-1)?.id, err: err instanceof Error ? err.message : String(err) },
          'bus publish failed; the events are committed and will be served from the log',
        );
      }),
    );
  }
  await Promise.all(publishes);
  deps.metrics.publishDuration.observe((performance.now() - started) / 1000);
}
