import type { Queryable } from '@openagents/sync-server-kit';

/**
 * Every SQL statement of the delta service that is not already a sync-log primitive of
 * server-kit (`readEvents`, `readHead`, `readHeads`, `pruneEvents`). Parameterised, one function
 * per statement.
 */

/** A row as pg returns it: timestamps are Dates, bigints numbers (server-kit's int8 parser). */
export type Row = Record<string, unknown>;

// Column lists are explicit so that a column added later is a deliberate wire change. Rows come
// ordered by (created_at, id): stable across calls, and the order a client would have seen them
// created in. Each query is served by the (scope column, created_at) index of its table.

export async function selectAgentsOfOrg(db: Queryable, orgId: string): Promise<Row[]> {
  const { rows } = await db.query(
    `SELECT id, org_id, name, status, created_at, updated_at, created_sync_id
     FROM agents WHERE org_id = $1 ORDER BY created_at, id`,
    [orgId],
  );
  return rows;
}

export async function selectPaymentsOfOrg(db: Queryable, orgId: string): Promise<Row[]> {
  const { rows } = await db.query(
    `SELECT id, org_id, agent_id, amount, currency, status, created_at, updated_at, created_sync_id
     FROM payments WHERE org_id = $1 ORDER BY created_at, id`,
    [orgId],
  );
  return rows;
}

export async function selectMessagesOfAgent(db: Queryable, agentId: string): Promise<Row[]> {
  const { rows } = await db.query(
    `SELECT id, agent_id, role, content, created_at, updated_at, created_sync_id
     FROM messages WHERE agent_id = $1 ORDER BY created_at, id`,
    [agentId],
  );
  return rows;
}

export async function selectCodeChangesOfAgent(db: Queryable, agentId: string): Promise<Row[]> {
  const { rows } = await db.query(
    `SELECT id, agent_id, path, diff, status, created_at, updated_at, created_sync_id
     FROM code_changes WHERE agent_id = $1 ORDER BY created_at, id`,
    [agentId],
  );
  return rows;
}

export async function selectReasoningStepsOfAgent(db: Queryable, agentId: string): Promise<Row[]> {
  const { rows } = await db.query(
    `SELECT id, agent_id, message_id, content, created_at, updated_at, created_sync_id
     FROM reasoning_steps WHERE agent_id = $1 ORDER BY created_at, id`,
    [agentId],
  );
  return rows;
}

/**
 * Key of the advisory lock that makes one replica the pruner at a time: any fixed bigint nothing
 * else in the database uses (these bytes spell "oapru"; kept below 2^53 to stay a JS number).
 */
export const PRUNE_LOCK_KEY = 0x6f_61_70_72_75;

/** Takes the pruning lock for this session if no other session holds it; true when taken. */
export async function tryLockPruning(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [
    PRUNE_LOCK_KEY,
  ]);
  return rows[0]?.locked === true;
}

export async function unlockPruning(db: Queryable): Promise<void> {
  await db.query('SELECT pg_advisory_unlock($1::bigint)', [PRUNE_LOCK_KEY]);
}

/**
 * Deletes at most `batchSize` idempotency keys created before `before`; returns how many. Small
 * batches keep each statement short so writers inserting keys never wait long on it.
 */
export async function deleteIdempotencyKeysBefore(
  db: Queryable,
  before: Date,
  batchSize: number,
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM idempotency_keys WHERE (principal, key) IN (
       SELECT principal, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2
     )`,
    [before, batchSize],
  );
  return rowCount ?? 0;
}
