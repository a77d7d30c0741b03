import {
  type ModelName,
  SCOPE_KEYS,
  type SyncEvent,
  scopeAllowed,
  scopeOf,
  unreachable,
  type WriteResult,
} from '@openagents/sync-protocol';
import {
  AppError,
  appendEvents,
  type Bus,
  inTransaction,
  type Logger,
  type NewEvent,
  type Pool,
  type PoolClient,
  type Principal,
} from '@openagents/sync-server-kit';
import type { ApiMetrics } from './metrics';
import type { FieldIssue, PlannedMutation } from './mutation-plan';
import {
  claimIdempotencyKeys,
  type DbRecord,
  deleteRecord,
  insertRecord,
  type StoredIdempotency,
  selectAgentOrg,
  selectMessageAgent,
  storeIdempotentResponses,
  updateRecord,
} from './store';

/** What one mutation answered: the HTTP status it travels with, the body, and whether it was replayed. */
export interface MutationOutcome {
  status: 200 | 201;
  body: WriteResult;
  replayed: boolean;
}

/** The response stored with an idempotency key and answered again to a retry. */
interface StoredResponse {
  status: 200 | 201;
  body: WriteResult;
}

export interface CommitDeps {
  pool: Pool;
  bus: Bus;
  log: Logger;
  metrics: ApiMetrics;
}

interface AppliedWrite {
  index: number;
  scope: string;
  status: 200 | 201;
  data: Record<string, unknown>;
  event: NewEvent;
}

/**
 * The commit path. Applies `mutations` (already validated) for `principal` in ONE transaction,
 * in this order:
 *
 * 1. Claim the idempotency keys (`INSERT ... ON CONFLICT DO NOTHING`). A key some earlier request
 *    already committed is answered from its stored response (same hash) or rejected with 409
 *    (different hash) and that mutation writes nothing. A concurrent request holding the same key
 *    makes this statement wait until it commits, so duplicates racing each other still write once.
 * 2. Write the records in entry order (scope checks and cross-record integrity on the way).
 * 3. Append the events, one call per scope in ascending scope order, as late as possible: the
 *    append row-locks each scope's head until COMMIT, so doing it last keeps that lock short, and
 *    a fixed order means two batches touching the same scopes cannot deadlock.
 * 4. Store the responses of the claimed keys, then COMMIT.
 *
 * Only after COMMIT are the events published, one message per scope. A failed publish does not
 * fail the write: the log is the truth and gateways catch up from it; it is counted in
 * `sync_bus_publish_failures_total`. An error anywhere before COMMIT rolls back everything:
 * no record, no event, no idempotency row.
 */
export async function commitMutations(
  deps: CommitDeps,
  principal: Principal,
  mutations: readonly PlannedMutation[],
): Promise<MutationOutcome[]> {
  return commitItems(
    deps,
    mutations.map((mutation) => ({ principal, mutation })),
  );
}

/** One mutation and who asks for it: the unit the commit path works on. */
export interface CommitItem {
  principal: Principal;
  mutation: PlannedMutation;
}

/**
 * `commitMutations` for mutations of possibly different principals (the group committer joins
 * concurrent requests into one transaction). Same steps, same all-or-none transaction; keys are
 * claimed per principal, principals in sorted order. Within one call a (principal, key) pair must
 * appear at most once.
 */
export async function commitItems(
  deps: CommitDeps,
  items: readonly CommitItem[],
): Promise<MutationOutcome[]> {
  const started = performance.now();
  const { outcomes, published } = await inTransaction(deps.pool, (client) => applyAll(client, items));
  deps.metrics.commitDuration.observe((performance.now() - started) / 1000);
  deps.metrics.commitSize.observe(items.length);
  await publishCommitted(deps, published);
  return outcomes;
}

async function applyAll(
  client: PoolClient,
  items: readonly CommitItem[],
): Promise<{ outcomes: MutationOutcome[]; published: Map<string, SyncEvent[]> }> {
  const bySubject = new Map<string, CommitItem[]>();
  for (const item of items) {
    if (!item.mutation.mutationId) continue;
    const list = bySubject.get(item.principal.sub);
    if (list) list.push(item);
    else bySubject.set(item.principal.sub, [item]);
  }
  const taken = new Map<string, StoredIdempotency>();
  for (const sub of [...bySubject.keys()].sort()) {
    const claims = bySubject
      .get(sub)!
      .map(({ mutation }) => ({ key: mutation.mutationId!, requestHash: mutation.requestHash }));
    for (const row of await claimIdempotencyKeys(client, sub, claims)) taken.set(keyOf(sub, row.key), row);
  }

  const outcomes: MutationOutcome[] = new Array(items.length);
  const applied: AppliedWrite[] = [];
  for (const [index, { principal, mutation }] of items.entries()) {
    const prior = mutation.mutationId ? taken.get(keyOf(principal.sub, mutation.mutationId)) : undefined;
    if (prior) {
      if (prior.requestHash !== mutation.requestHash) {
        throw new AppError('idempotency_conflict', 'This idempotency key was used with a different request', {
          details: [{ path: mutation.at.key, message: 'already used with a different request' }],
        });
      }
      const stored = prior.response as StoredResponse;
      outcomes[index] = { status: stored.status, body: stored.body, replayed: true };
      continue;
    }
    applied.push({ index, ...(await applyOne(client, principal, mutation)) });
  }

  const byScope = new Map<string, AppliedWrite[]>();
  for (const write of applied) {
    const group = byScope.get(write.scope);
    if (group) group.push(write);
    else byScope.set(write.scope, [write]);
  }
  const published = new Map<string, SyncEvent[]>();
  for (const scope of [...byScope.keys()].sort()) {
    const group = byScope.get(scope)!;
    const events = await appendEvents(
      client,
      scope,
      group.map((w) => w.event),
    );
    published.set(scope, events);
    group.forEach((write, i) => {
      outcomes[write.index] = {
        status: write.status,
        body: { data: write.data, scope, syncId: events[i]!.id },
        replayed: false,
      };
    });
  }

  const responses = new Map<string, { key: string; response: StoredResponse }[]>();
  for (const write of applied) {
    const { principal, mutation } = items[write.index]!;
    if (!mutation.mutationId) continue;
    const outcome = outcomes[write.index]!;
    const list = responses.get(principal.sub) ?? [];
    list.push({ key: mutation.mutationId, response: { status: outcome.status, body: outcome.body } });
    responses.set(principal.sub, list);
  }
  for (const sub of [...responses.keys()].sort()) {
    await storeIdempotentResponses(client, sub, responses.get(sub)!);
  }
  return { outcomes, published };
}

/** A (subject, key) pair as one map key; keys are printable ASCII, so the NUL separator is unambiguous. */
function keyOf(sub: string, key: string): string {
  return `${sub}\u0000${key}`;
}

async function applyOne(
  client: PoolClient,
  principal: Principal,
  mutation: PlannedMutation,
): Promise<Omit<AppliedWrite, 'index'>> {
  try {
    return await applyWrite(client, principal, mutation);
  } catch (err) {
    throw fromConstraintError(err, mutation) ?? err;
  }
}

async function applyWrite(
  client: PoolClient,
  principal: Principal,
  mutation: PlannedMutation,
): Promise<Omit<AppliedWrite, 'index'>> {
  const { model, at, mutationId } = mutation;
  const scopeField = SCOPE_KEYS[model].field;
  switch (mutation.action) {
    case 'insert': {
      const scope = scopeOf(model, mutation.values);
      assertScope(principal, scope, at.data + scopeField);
      await checkReferences(client, model, mutation.values, at.data);
      const record = await insertRecord(client, model, mutation.values);
      if (!record) {
        throw new AppError('conflict', `A ${model} with this id already exists`, {
          details: [
            { path: mutation.at.data ? `${at.data}id` : 'id', message: 'already exists', id: mutation.id },
          ],
        });
      }
      return {
        scope,
        status: 201,
        data: record,
        event: { model, model_id: mutation.id, action: 'insert', data: record, mutationId },
      };
    }
    case 'update': {
      const record = await updateRecord(client, model, mutation.id, mutation.fields);
      if (!record) throw notFound(model, mutation.id, at.id);
      // Checked after the UPDATE (which also locks the row): a refusal rolls the whole
      // transaction back, so nothing of it is ever visible.
      const scope = scopeOf(model, record);
      assertScope(principal, scope, at.id);
      await checkReferences(client, model, { ...record, ...mutation.fields }, at.data, mutation.fields);
      const changed: Record<string, unknown> = {};
      for (const field of Object.keys(mutation.fields)) changed[field] = record[field];
      changed.updated_at = record.updated_at;
      return {
        scope,
        status: 200,
        data: record,
        event: { model, model_id: mutation.id, action: 'update', data: changed, mutationId },
      };
    }
    case 'delete': {
      const record = await deleteRecord(client, model, mutation.id);
      if (!record) throw notFound(model, mutation.id, at.id);
      const scope = scopeOf(model, record);
      assertScope(principal, scope, at.id);
      return {
        scope,
        status: 200,
        data: { id: mutation.id },
        event: { model, model_id: mutation.id, action: 'delete', data: null, mutationId },
      };
    }
    default:
      return unreachable(mutation);
  }
}

/**
 * Integrity the foreign keys alone cannot express: a Payment's agent belongs to the payment's
 * org; a ReasoningStep's message belongs to the step's agent. Plain existence of agent_id is left
 * to the foreign keys (mapped to 404 by `fromConstraintError`), saving a query on the hot path.
 * `only`: on update, check just the fields being changed.
 */
async function checkReferences(
  client: PoolClient,
  model: ModelName,
  record: DbRecord,
  prefix: string,
  only?: DbRecord,
): Promise<void> {
  const checks = (field: string) => record[field] != null && (only === undefined || field in only);
  if (model === 'Payment' && checks('agent_id')) {
    const org = await selectAgentOrg(client, String(record.agent_id));
    if (org === null) throw referenceMissing('Agent', `${prefix}agent_id`, record.agent_id);
    if (org !== record.org_id) {
      throw new AppError('invalid_body', 'The agent belongs to another org', {
        details: [{ path: `${prefix}agent_id`, message: 'must be an agent of the same org' }],
      });
    }
  }
  if (model === 'ReasoningStep' && checks('message_id')) {
    const agent = await selectMessageAgent(client, String(record.message_id));
    if (agent === null) throw referenceMissing('Message', `${prefix}message_id`, record.message_id);
    if (agent !== record.agent_id) {
      throw new AppError('invalid_body', 'The message belongs to another agent', {
        details: [{ path: `${prefix}message_id`, message: 'must be a message of the same agent' }],
      });
    }
  }
}

function assertScope(principal: Principal, scope: string, path: string): void {
  if (!scopeAllowed(principal.scopes, scope)) {
    throw new AppError('forbidden', `Token does not grant scope ${scope}`, {
      details: [{ path, message: `scope ${scope} is not granted by the token`, scope }],
    });
  }
}

function notFound(model: ModelName, id: string, path: string): AppError {
  return new AppError('not_found', `No ${model} with id ${id}`, {
    details: [{ path, message: `no ${model} with this id` }],
  });
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
function fromConstraintError(err: unknown, mutation: PlannedMutation): AppError | undefined {
  const pgErr = err as { code?: string; constraint?: string; table?: string };
  if (pgErr?.code !== '23503') return undefined;
  if (mutation.action === 'delete') {
    return new AppError('conflict', `The ${mutation.model} is still referenced by other records`, {
      details: [
        {
          path: mutation.at.id,
          message: `still referenced (${pgErr.constraint ?? 'foreign key'}); delete those records first`,
        },
      ],
    });
  }
  const column = FK_COLUMN.exec(pgErr.constraint ?? '')?.[1];
  if (!column) return undefined;
  const value = mutation.action === 'insert' ? mutation.values[column] : mutation.fields[column];
  return referenceMissing(FK_MODEL[column]!, mutation.at.data + column, value);
}

async function publishCommitted(deps: CommitDeps, published: Map<string, SyncEvent[]>): Promise<void> {
  await Promise.all(
    [...published].map(async ([scope, events]) => {
      const started = performance.now();
      try {
        await deps.bus.publish({ scope, events });
      } catch (err) {
        deps.metrics.publishFailures.inc();
        deps.log.warn(
          { scope, lastId: events.at(-1)?.id, err: err instanceof Error ? err.message : String(err) },
          'bus publish failed; the events are committed and will be served from the log',
        );
      } finally {
        deps.metrics.publishDuration.observe((performance.now() - started) / 1000);
      }
    }),
  );
}
