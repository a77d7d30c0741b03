import { randomUUID } from 'node:crypto';
import {
  AppendEventData,
  applyAppend,
  type ModelName,
  type ModelsSnapshot,
  type SyncEvent,
  scopeOf,
  unreachable,
} from '@openagents/sync-protocol';
import { appendEvents, inTransaction, type Pool } from '@openagents/sync-server-kit';
import { toRecord } from '../src/records';

/**
 * A minimal write path for the delta service's tests, until (and besides) the API service: each
 * write changes one row and appends its event to the row's scope in the same transaction, exactly
 * as the contract's write path must. Table and column names are fixed strings, never input.
 */
const TABLES: Record<ModelName, string> = {
  Agent: 'agents',
  Message: 'messages',
  Payment: 'payments',
  CodeChange: 'code_changes',
  ReasoningStep: 'reasoning_steps',
  ToolCall: 'tool_calls',
};

export interface Written {
  record: Record<string, unknown>;
  scope: string;
  event: SyncEvent;
}

export async function insertRecord(
  pool: Pool,
  model: ModelName,
  data: Record<string, unknown>,
  options: { createdAt?: Date } = {},
): Promise<Written> {
  const row: Record<string, unknown> = { id: randomUUID(), ...data };
  if (options.createdAt) {
    row.created_at = options.createdAt;
    row.updated_at = options.createdAt;
  }
  const columns = Object.keys(row);
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `INSERT INTO ${TABLES[model]} (${columns.join(', ')})
       VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING *`,
      columns.map((c) => row[c]),
    );
    const scope = scopeOf(model, toRecord(rows[0]!));
    // The record carries the id of the event that inserts it, as sync_commit writes it: the
    // scope's head plus one, with the head row locked until commit (created if missing, so
    // concurrent first writes to a scope wait for each other instead of both reading 0).
    const head = await client.query<{ last_id: number }>(
      `INSERT INTO sync_scopes AS s (scope, last_id) VALUES ($1, 0)
       ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id RETURNING last_id`,
      [scope],
    );
    const stamped = await client.query(
      `UPDATE ${TABLES[model]} SET created_sync_id = $2 WHERE id = $1 RETURNING *`,
      [row.id, (head.rows[0]?.last_id ?? 0) + 1],
    );
    const record = toRecord(stamped.rows[0]!);
    const [event] = await appendEvents(client, scope, [
      { model, model_id: String(record.id), action: 'insert', data: record, mutationId: null },
    ]);
    if (event!.id !== record.created_sync_id)
      throw new Error('insertRecord: created_sync_id is not its event id');
    return { record, scope, event: event! };
  });
}

export async function updateRecord(
  pool: Pool,
  model: ModelName,
  id: string,
  patch: Record<string, unknown>,
): Promise<Written> {
  const columns = Object.keys(patch);
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `UPDATE ${TABLES[model]} SET ${columns.map((c, i) => `${c} = $${i + 2}`).join(', ')}, updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, ...columns.map((c) => patch[c])],
    );
    const record = toRecord(rows[0]!);
    const scope = scopeOf(model, record);
    const data: Record<string, unknown> = { updated_at: record.updated_at };
    for (const c of columns) data[c] = record[c];
    const [event] = await appendEvents(client, scope, [
      { model, model_id: id, action: 'update', data, mutationId: null },
    ]);
    return { record, scope, event: event! };
  });
}

export async function deleteRecord(pool: Pool, model: ModelName, id: string): Promise<Written> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(`DELETE FROM ${TABLES[model]} WHERE id = $1 RETURNING *`, [id]);
    const record = toRecord(rows[0]!);
    const scope = scopeOf(model, record);
    const [event] = await appendEvents(client, scope, [
      { model, model_id: id, action: 'delete', data: null, mutationId: null },
    ]);
    return { record, scope, event: event! };
  });
}

/**
 * Applies events to a snapshot the way a client does: insert puts the record, update merges the
 * changed fields, delete removes it. Returns a new snapshot.
 */
export function applyEvents(models: ModelsSnapshot, events: readonly SyncEvent[]): ModelsSnapshot {
  const byModel = new Map<ModelName, Map<string, Record<string, unknown>>>();
  for (const [model, records] of Object.entries(models) as [ModelName, Record<string, unknown>[]][]) {
    byModel.set(model, new Map(records.map((r) => [String(r.id), { ...r }])));
  }
  for (const event of events) {
    const records = byModel.get(event.model)!;
    switch (event.action) {
      case 'insert':
        records.set(event.model_id, { ...event.data });
        break;
      case 'update':
        records.set(event.model_id, { ...records.get(event.model_id), ...event.data });
        break;
      case 'delete':
        records.delete(event.model_id);
        break;
      case 'append': {
        const current = records.get(event.model_id);
        const piece = AppendEventData.parse(event.data);
        const outcome = applyAppend(String(current?.[piece.field] ?? ''), piece);
        if (current && outcome.kind === 'applied') {
          records.set(event.model_id, {
            ...current,
            [piece.field]: outcome.text,
            updated_at: piece.updated_at,
          });
        }
        break;
      }
      default:
        unreachable(event.action);
    }
  }
  return sortedSnapshot(
    Object.fromEntries(
      [...byModel].map(([model, records]) => [model, [...records.values()]]),
    ) as ModelsSnapshot,
  );
}

/** The snapshot with every model's records ordered by id, for comparisons that ignore row order. */
export function sortedSnapshot(models: ModelsSnapshot): ModelsSnapshot {
  const sorted = {} as ModelsSnapshot;
  for (const [model, records] of Object.entries(models) as [ModelName, Record<string, unknown>[]][]) {
    sorted[model] = [...records].sort((a, b) => String(a.id).localeCompare(String(b.id)));
  }
  return sorted;
}

const EMPTY: ModelsSnapshot = {
  Agent: [],
  Message: [],
  Payment: [],
  CodeChange: [],
  ReasoningStep: [],
  ToolCall: [],
};

/**
 * The scope's rows read straight from the tables (every column, sorted by id): an oracle that
 * shares no code with the reader's snapshot queries.
 */
export async function scopeTables(pool: Pool, scope: string): Promise<ModelsSnapshot> {
  const [kind, id] = scope.split(':') as [string, string];
  const rows = async (table: string, column: string) =>
    (await pool.query(`SELECT * FROM ${table} WHERE ${column}::text = $1`, [id])).rows.map(toRecord);
  if (kind === 'org') {
    return sortedSnapshot({
      ...EMPTY,
      Agent: await rows('agents', 'org_id'),
      Payment: await rows('payments', 'org_id'),
    });
  }
  if (kind === 'agent') {
    return sortedSnapshot({
      ...EMPTY,
      Message: await rows('messages', 'agent_id'),
      CodeChange: await rows('code_changes', 'agent_id'),
      ReasoningStep: await rows('reasoning_steps', 'agent_id'),
      ToolCall: await rows('tool_calls', 'agent_id'),
    });
  }
  return EMPTY;
}

/** A snapshot with no records, to replay a whole log onto. */
export function emptySnapshot(): ModelsSnapshot {
  return { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [], ToolCall: [] };
}
