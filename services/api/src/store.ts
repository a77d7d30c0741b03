import type { ModelName } from '@openagents/sync-protocol';
import type { PoolClient } from '@openagents/sync-server-kit';

/**
 * Every SQL statement of the write path, as named functions. Table and column names come only
 * from the constants below, never from input; values are always parameters.
 */

/** Domain table of each model. */
export const TABLES = {
  Agent: 'agents',
  Message: 'messages',
  Payment: 'payments',
  CodeChange: 'code_changes',
  ReasoningStep: 'reasoning_steps',
} as const satisfies Record<ModelName, string>;

/** Columns a client may set on create (id included), in insert order. */
const WRITABLE_COLUMNS = {
  Agent: ['id', 'org_id', 'name', 'status'],
  Message: ['id', 'agent_id', 'role', 'content'],
  Payment: ['id', 'org_id', 'agent_id', 'amount', 'currency', 'status'],
  CodeChange: ['id', 'agent_id', 'path', 'diff', 'status'],
  ReasoningStep: ['id', 'agent_id', 'message_id', 'content'],
} as const satisfies Record<ModelName, readonly string[]>;

/** Columns that an update may change (the scope-deciding ones are absent). */
export const UPDATABLE_COLUMNS = {
  Agent: ['name', 'status'],
  Message: ['role', 'content'],
  Payment: ['amount', 'currency', 'status'],
  CodeChange: ['path', 'diff', 'status'],
  ReasoningStep: ['message_id', 'content'],
} as const satisfies Record<ModelName, readonly string[]>;

const RETURNING = {
  Agent: [...WRITABLE_COLUMNS.Agent, 'created_at', 'updated_at'],
  Message: [...WRITABLE_COLUMNS.Message, 'created_at', 'updated_at'],
  Payment: [...WRITABLE_COLUMNS.Payment, 'created_at', 'updated_at'],
  CodeChange: [...WRITABLE_COLUMNS.CodeChange, 'created_at', 'updated_at'],
  ReasoningStep: [...WRITABLE_COLUMNS.ReasoningStep, 'created_at', 'updated_at'],
} as const satisfies Record<ModelName, readonly string[]>;

export type DbRecord = Record<string, unknown>;

/** Wire form of a row: timestamps as ISO strings, every column present. */
function toRecord(model: ModelName, row: Record<string, unknown>): DbRecord {
  const record: DbRecord = {};
  for (const column of RETURNING[model]) {
    const value = row[column];
    record[column] = value instanceof Date ? value.toISOString() : value;
  }
  return record;
}

/**
 * Inserts a record; returns it, or null when a record with that id already exists (the caller
 * answers 409). Timestamps are the transaction's `now()`.
 */
export async function insertRecord(
  client: PoolClient,
  model: ModelName,
  values: DbRecord,
): Promise<DbRecord | null> {
  const columns = WRITABLE_COLUMNS[model];
  const placeholders = columns.map((_, i) => `$${i + 1}`).join(', ');
  const { rows } = await client.query(
    `INSERT INTO ${TABLES[model]} (${columns.join(', ')}) VALUES (${placeholders})
     ON CONFLICT (id) DO NOTHING RETURNING ${RETURNING[model].join(', ')}`,
    columns.map((c) => values[c] ?? null),
  );
  return rows[0] ? toRecord(model, rows[0]) : null;
}

/**
 * Sets the given columns (and updated_at = now()) of one record; returns the whole row after the
 * update, or null when there is no such record. `fields` keys must be UPDATABLE_COLUMNS of the model.
 */
export async function updateRecord(
  client: PoolClient,
  model: ModelName,
  id: string,
  fields: DbRecord,
): Promise<DbRecord | null> {
  const allowed: readonly string[] = UPDATABLE_COLUMNS[model];
  const columns = Object.keys(fields).filter((c) => allowed.includes(c));
  const sets = columns.map((c, i) => `${c} = $${i + 2}`);
  sets.push('updated_at = now()');
  const { rows } = await client.query(
    `UPDATE ${TABLES[model]} SET ${sets.join(', ')} WHERE id = $1 RETURNING ${RETURNING[model].join(', ')}`,
    [id, ...columns.map((c) => fields[c])],
  );
  return rows[0] ? toRecord(model, rows[0]) : null;
}

/** Deletes one record; returns the deleted row, or null when there is no such record. */
export async function deleteRecord(
  client: PoolClient,
  model: ModelName,
  id: string,
): Promise<DbRecord | null> {
  const { rows } = await client.query(
    `DELETE FROM ${TABLES[model]} WHERE id = $1 RETURNING ${RETURNING[model].join(', ')}`,
    [id],
  );
  return rows[0] ? toRecord(model, rows[0]) : null;
}

/** The org of an agent, or null when the agent does not exist. */
export async function selectAgentOrg(client: PoolClient, agentId: string): Promise<string | null> {
  const { rows } = await client.query<{ org_id: string }>('SELECT org_id FROM agents WHERE id = $1', [
    agentId,
  ]);
  return rows[0]?.org_id ?? null;
}

/** True when the agent exists. */
export async function agentExists(client: PoolClient, agentId: string): Promise<boolean> {
  const { rowCount } = await client.query('SELECT 1 FROM agents WHERE id = $1', [agentId]);
  return (rowCount ?? 0) > 0;
}

/** The agent of a message, or null when the message does not exist. */
export async function selectMessageAgent(client: PoolClient, messageId: string): Promise<string | null> {
  const { rows } = await client.query<{ agent_id: string }>('SELECT agent_id FROM messages WHERE id = $1', [
    messageId,
  ]);
  return rows[0]?.agent_id ?? null;
}

/* Idempotency ------------------------------------------------------------------------------ */

export interface IdempotencyClaim {
  key: string;
  requestHash: string;
}

export interface StoredIdempotency {
  key: string;
  requestHash: string;
  response: unknown;
}

/**
 * Claims keys for `principal` (`INSERT ... ON CONFLICT DO NOTHING`, in key order so two
 * transactions claiming overlapping keys lock them in the same order). If another transaction
 * holds an uncommitted claim on a key, this statement waits for it on the primary key: once it
 * commits, the key counts as taken here; if it rolls back, the claim succeeds here. Returns the
 * stored rows of the keys that were already taken (a placeholder `null` response is written for
 * the new ones, replaced by `storeIdempotentResponses` before commit).
 */
export async function claimIdempotencyKeys(
  client: PoolClient,
  principal: string,
  claims: readonly IdempotencyClaim[],
): Promise<StoredIdempotency[]> {
  if (claims.length === 0) return [];
  const sorted = [...claims].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const keys = sorted.map((c) => c.key);
  const { rows: inserted } = await client.query<{ key: string }>(
    `INSERT INTO idempotency_keys (principal, key, request_hash, response)
     SELECT $1, k.key, k.hash, 'null'::jsonb
     FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS k(key, hash, ord)
     ORDER BY k.ord
     ON CONFLICT (principal, key) DO NOTHING
     RETURNING key`,
    [principal, keys, sorted.map((c) => c.requestHash)],
  );
  if (inserted.length === claims.length) return [];
  const fresh = new Set(inserted.map((r) => r.key));
  const taken = keys.filter((k) => !fresh.has(k));
  const { rows } = await client.query<{ key: string; request_hash: string; response: unknown }>(
    'SELECT key, request_hash, response FROM idempotency_keys WHERE principal = $1 AND key = ANY($2::text[])',
    [principal, taken],
  );
  return rows.map((r) => ({ key: r.key, requestHash: r.request_hash, response: r.response }));
}

/** Replaces the placeholder responses of keys claimed in this transaction with the real ones. */
export async function storeIdempotentResponses(
  client: PoolClient,
  principal: string,
  responses: readonly { key: string; response: unknown }[],
): Promise<void> {
  if (responses.length === 0) return;
  await client.query(
    `UPDATE idempotency_keys AS k SET response = r.response
     FROM jsonb_to_recordset($2::jsonb) AS r(key text, response jsonb)
     WHERE k.principal = $1 AND k.key = r.key`,
    [principal, JSON.stringify(responses)],
  );
}
