import {
  type BootstrapResponse,
  DEFAULT_DELTA_LIMIT,
  type DeltaResponse,
  MAX_DELTA_LIMIT,
  type ModelsSnapshot,
  unreachable,
} from '@openagents/sync-protocol';
import {
  AppError,
  type DeltaSource,
  inTransaction,
  type Pool,
  type Queryable,
  readEvents,
  readHead,
  readHeads,
} from '@openagents/sync-server-kit';
import {
  type Row,
  selectAgentsOfOrg,
  selectCodeChangesOfAgent,
  selectMessagesOfAgent,
  selectPaymentsOfOrg,
  selectReasoningStepsOfAgent,
} from './queries';
import { toRecord } from './records';
import { scopeTarget } from './scope-target';

/** The Postgres implementation of the gateway's `DeltaSource`. */
export type DeltaReader = DeltaSource;

/**
 * Reads snapshots and the log straight from Postgres. The gateway calls it in-process in
 * standalone mode; the delta service's HTTP app serves it to remote gateways and clients.
 *
 * @example
 *   const reader = createDeltaReader({ pool });
 *   const { models, lastSyncId } = await reader.bootstrap('org:7f1c…');
 *   const page = await reader.delta('org:7f1c…', lastSyncId);
 */
export function createDeltaReader(deps: { pool: Pool }): DeltaReader {
  const { pool } = deps;
  return {
    bootstrap: (scope) => readSnapshot(pool, scope),
    delta: (scope, lastSyncId, limit = DEFAULT_DELTA_LIMIT) => readDelta(pool, scope, lastSyncId, limit),
    heads: (scopes) => readHeads(pool, scopes),
  };
}

/**
 * One consistent snapshot of a scope. Everything is read inside a single REPEATABLE READ
 * transaction, so every statement sees the same snapshot, taken at the first one. A write commits
 * its rows and its event together, so the snapshot holds either both or neither: the rows are
 * exactly the result of events 1..last_id, and replaying last_id+1… on top reaches the current
 * state. READ ONLY lets Postgres skip work for the transaction and documents the intent.
 */
async function readSnapshot(pool: Pool, scope: string): Promise<BootstrapResponse> {
  return inTransaction(
    pool,
    async (client) => {
      const head = await readHead(client, scope);
      const models = await readModels(client, scope);
      return { scope, models, lastSyncId: head.lastId };
    },
    { isolation: 'repeatable read', readOnly: true },
  );
}

/** Every model's rows of the scope: one query per model that belongs to it, never per record. */
async function readModels(db: Queryable, scope: string): Promise<ModelsSnapshot> {
  const models: Record<keyof ModelsSnapshot, Row[]> = {
    Agent: [],
    Message: [],
    Payment: [],
    CodeChange: [],
    ReasoningStep: [],
  };
  const target = scopeTarget(scope);
  switch (target.kind) {
    case 'org':
      models.Agent = await selectAgentsOfOrg(db, target.orgId);
      models.Payment = await selectPaymentsOfOrg(db, target.orgId);
      break;
    case 'agent':
      models.Message = await selectMessagesOfAgent(db, target.agentId);
      models.CodeChange = await selectCodeChangesOfAgent(db, target.agentId);
      models.ReasoningStep = await selectReasoningStepsOfAgent(db, target.agentId);
      break;
    case 'none':
      break;
    default:
      unreachable(target);
  }
  return {
    Agent: models.Agent.map(toRecord),
    Message: models.Message.map(toRecord),
    Payment: models.Payment.map(toRecord),
    CodeChange: models.CodeChange.map(toRecord),
    ReasoningStep: models.ReasoningStep.map(toRecord),
  };
}

/**
 * Events after `lastSyncId`, ascending, at most `limit`.
 *
 * Two statements, no transaction: the head first (for the cursor checks), then the page. Events
 * committed between the two can only extend the page, so `latestSyncId` is the larger of the head
 * and the last event returned. Pruning between the two is caught by checking that the page starts
 * exactly at lastSyncId+1 — a page must never silently skip ids.
 */
async function readDelta(
  pool: Pool,
  scope: string,
  lastSyncId: number,
  limit: number,
): Promise<DeltaResponse> {
  if (!Number.isSafeInteger(lastSyncId) || lastSyncId < 0) {
    throw new AppError('bad_request', 'lastSyncId must be a non-negative integer', {
      details: { lastSyncId },
    });
  }
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_DELTA_LIMIT) {
    throw new AppError('bad_request', `limit must be an integer in 1..${MAX_DELTA_LIMIT}`, {
      details: { limit },
    });
  }
  const head = await readHead(pool, scope);
  if (lastSyncId < head.prunedThrough) throw cursorPruned(scope, lastSyncId, head.prunedThrough);
  if (lastSyncId > head.lastId) throw cursorAhead(scope, lastSyncId, head.lastId);

  const events = lastSyncId === head.lastId ? [] : await readEvents(pool, scope, lastSyncId, limit);
  if (lastSyncId < head.lastId && events[0]?.id !== lastSyncId + 1) {
    // The retained log moved past the cursor after the head was read: a concurrent prune.
    throw cursorPruned(scope, lastSyncId, (events[0]?.id ?? head.lastId + 1) - 1);
  }
  const last = events.at(-1)?.id ?? lastSyncId;
  const latestSyncId = Math.max(head.lastId, last);
  return { scope, events, latestSyncId, hasMore: last < latestSyncId };
}

// reset_required carries no details: the contract fixes its body to a code and a message.
function cursorPruned(scope: string, lastSyncId: number, prunedThrough: number): AppError {
  return new AppError(
    'reset_required',
    `Events after ${lastSyncId} of ${scope} are no longer retained (pruned through ${prunedThrough}); bootstrap again`,
  );
}

function cursorAhead(scope: string, lastSyncId: number, head: number): AppError {
  return new AppError(
    'reset_required',
    `Cursor ${lastSyncId} is ahead of the log of ${scope} (last event ${head}): it belongs to another history; bootstrap again`,
  );
}
