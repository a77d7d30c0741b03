import { MODEL_REGISTRY, type ModelDef, type ModelName } from '@openagents/sync-protocol';
import type { Queryable } from '@openagents/sync-server-kit';

/**
 * Every SQL statement of the delta service that is not already a sync-log primitive of
 * server-kit (`readEvents`, `readHead`, `readHeads`, `pruneEvents`). Parameterised, one function
 * per statement.
 */

/** A row as pg returns it: timestamps are Dates, bigints numbers (server-kit's int8 parser). */
export type Row = Record<string, unknown>;

/**
 * What a bootstrap page needs to know about one model's table, derived from its declaration in
 * the model registry (packages/protocol/src/models.ts). Identifiers, never input. Column lists
 * are explicit, so a column exists on the wire exactly when the model declares it.
 */
export interface ModelTable {
  table: string;
  /** The column a scope selects rows by (`org:<id>` → org_id, `agent:<id>` → agent_id). */
  scopeColumn: string;
  columns: readonly string[];
  /**
   * Size estimates (SQL expressions) of the columns whose length dominates a record's JSON: the
   * page's size estimate in SQL (text: its octets; json: its stored size).
   */
  sizedColumns: readonly string[];
}

const tables = new WeakMap<ModelDef, ModelTable>();

/** The snapshot query's view of a model (computed once per declaration). */
export function modelTable(model: ModelDef): ModelTable {
  let t = tables.get(model);
  if (!t) {
    const fields = Object.values(model.fields);
    t = {
      table: model.table,
      scopeColumn: model.scope.field,
      columns: model.columns,
      sizedColumns: [
        ...fields.filter((f) => f.kind === 'text' || f.kind === 'enum').map((f) => `octet_length(${f.name})`),
        ...fields.filter((f) => f.kind === 'json').map((f) => `pg_column_size(${f.name})`),
      ],
    };
    tables.set(model, t);
  }
  return t;
}

/** The built-in models' tables, by model name. */
export const MODEL_TABLES = Object.fromEntries(
  MODEL_REGISTRY.models.map((m) => [m.name, modelTable(m)]),
) as Record<ModelName, ModelTable>;

/** A row of a bootstrap page with its keyset position, which is not part of the record. */
export interface PageRow {
  row: Row;
  createdUs: number;
  id: string;
}

/** Bytes of a record's JSON besides its sized columns (keys, uuids, timestamps), as an estimate. */
const RECORD_OVERHEAD_BYTES = 200;

/**
 * The next rows of one model of a scope in keyset order (created_at, id) after `after`, as many
 * as fit in `budgetBytes` of JSON by an estimate Postgres computes without detoasting the text
 * (`octet_length` of a toasted value reads its header): the first row always, then rows while the
 * estimated running total stays within the budget, at most `maxRows`. The caller measures
 * the exact JSON and may send fewer. `exhausted` is true when no row of the model follows the
 * ones returned. (created_at, id) is immutable for a record and unique, so pages never overlap
 * and never skip a record that exists throughout; the (scope column, created_at) index serves it.
 *
 * Only records inserted at or before `throughSyncId` (the bootstrap's L) are walked: a record
 * inserted later reaches the client as its insert event after L, so a scope that receives
 * inserts faster than a client fetches pages still ends its bootstrap. Rows without
 * `created_sync_id` (written before the column existed, or by hand) count as older than any L.
 */
export async function selectModelPage(
  db: Queryable,
  model: ModelDef,
  scopeId: string,
  after: { createdUs: number; id: string } | undefined,
  budgetBytes: number,
  maxRows: number,
  throughSyncId: number,
): Promise<{ rows: PageRow[]; exhausted: boolean }> {
  const t = modelTable(model);
  const columns = t.columns.join(', ');
  const estimate = [String(RECORD_OVERHEAD_BYTES), ...t.sizedColumns.map((c) => `coalesce(${c}, 0)`)].join(
    ' + ',
  );
  // The row comparison picks up exactly after the cursor; the plain `created_at >=` lets the
  // index start there instead of at the scope's first row.
  const position = after
    ? `AND created_at >= timestamptz 'epoch' + $5::bigint * interval '1 microsecond'
       AND (created_at, id) > (timestamptz 'epoch' + $5::bigint * interval '1 microsecond', $6::uuid)`
    : '';
  const { rows } = await db.query<Row & { created_us: number; fetched: number }>(
    `SELECT ${columns}, created_us, fetched FROM (
       SELECT *, sum(est) OVER (ORDER BY created_at, id ROWS UNBOUNDED PRECEDING) - est AS before,
              count(*) OVER () AS fetched
       FROM (
         SELECT ${columns}, (extract(epoch FROM created_at) * 1000000)::bigint AS created_us,
                ${estimate} AS est
         FROM ${t.table} WHERE ${t.scopeColumn} = $1 ${position}
           AND (created_sync_id IS NULL OR created_sync_id <= $4::bigint)
         ORDER BY created_at, id LIMIT $2
       ) candidates
     ) sized WHERE before = 0 OR before + est <= $3 ORDER BY created_at, id`,
    after
      ? [scopeId, maxRows + 1, budgetBytes, throughSyncId, after.createdUs, after.id]
      : [scopeId, maxRows + 1, budgetBytes, throughSyncId],
  );
  const fetched = rows[0]?.fetched ?? 0;
  const exhausted = fetched <= maxRows && rows.length === fetched;
  return {
    rows: rows.slice(0, maxRows).map(({ created_us, fetched: _, ...row }) => ({
      row,
      createdUs: created_us,
      id: row.id as string,
    })),
    exhausted,
  };
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
