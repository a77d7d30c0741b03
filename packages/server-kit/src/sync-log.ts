import type { EventAction, ModelName, SyncEvent } from '@openagents/sync-protocol';
import type { Pool, PoolClient } from './db';

/** Anything that can run a query: a pool or a client inside a transaction. */
export interface Queryable {
  query: Pool['query'];
}

/** An event before it has an id: what a write appends to its scope's log. */
export interface NewEvent {
  model: ModelName;
  model_id: string;
  action: EventAction;
  data: Record<string, unknown> | null;
  mutationId: string | null;
  /** Subject that wrote it, kept in the log for audit and never sent (`sync_events.actor`). */
  actor?: string | null;
}

interface EventRow {
  scope: string;
  id: number;
  model: ModelName;
  model_id: string;
  action: EventAction;
  data: Record<string, unknown> | null;
  mutation_id: string | null;
  created_at: Date;
}

function toEvent(row: EventRow): SyncEvent {
  return {
    id: row.id,
    scope: row.scope,
    model: row.model,
    model_id: row.model_id,
    action: row.action,
    data: row.data,
    mutationId: row.mutation_id,
    created_at: row.created_at.toISOString(),
  };
}

/**
 * Appends events to one scope's log inside the caller's transaction and returns them with ids.
 * The mutation workers do the same inside their `sync_commit` statement (see the migration
 * `1764590000000_commit-pipeline.sql`); this is the protocol for in-process writers.
 *
 * Ordering: the first statement bumps `sync_scopes.last_id` by the number of events, which
 * row-locks the scope until the transaction ends. A concurrent writer of the same scope blocks on
 * that row and, once this transaction commits, reads the new value; if this one rolls back, it
 * reads the old value and takes the same ids. Hence ids are gap-free and assigned in commit order,
 * and id N+1 can never become visible before N. Different scopes never wait for each other.
 *
 * Call it as late as possible in the transaction (the lock is held until commit), and when one
 * transaction appends to several scopes, in ascending scope order so two such transactions
 * cannot deadlock on each other's scope rows.
 */
export async function appendEvents(
  client: PoolClient,
  scope: string,
  events: readonly NewEvent[],
): Promise<SyncEvent[]> {
  if (events.length === 0) return [];
  const head = await client.query<{ last_id: number }>(
    `INSERT INTO sync_scopes AS s (scope, last_id) VALUES ($1, $2)
     ON CONFLICT (scope) DO UPDATE SET last_id = s.last_id + EXCLUDED.last_id, updated_at = now()
     RETURNING last_id`,
    [scope, events.length],
  );
  const lastId = head.rows[0]!.last_id;
  const firstId = lastId - events.length + 1;
  const { rows } = await client.query<EventRow>(
    `INSERT INTO sync_events (scope, id, model, model_id, action, data, mutation_id, actor)
     SELECT $1, $2::bigint + e.ord, e.model, e.model_id, e.action, e.data, e.mutation_id, e.actor
     FROM jsonb_to_recordset($3::jsonb)
       AS e(ord bigint, model text, model_id uuid, action text, data jsonb, mutation_id text, actor text)
     RETURNING scope, id, model, model_id, action, data, mutation_id, created_at`,
    [
      scope,
      firstId,
      JSON.stringify(
        events.map((e, ord) => ({
          ord,
          model: e.model,
          model_id: e.model_id,
          action: e.action,
          data: e.data,
          mutation_id: e.mutationId,
          actor: e.actor ?? null,
        })),
      ),
    ],
  );
  return rows.map(toEvent).sort((a, b) => a.id - b.id);
}

/** Events of a scope with id > afterId, ascending, at most `limit`. */
export async function readEvents(
  db: Queryable,
  scope: string,
  afterId: number,
  limit: number,
): Promise<SyncEvent[]> {
  const { rows } = await db.query<EventRow>(
    `SELECT scope, id, model, model_id, action, data, mutation_id, created_at
     FROM sync_events WHERE scope = $1 AND id > $2 ORDER BY id LIMIT $3`,
    [scope, afterId, limit],
  );
  return rows.map(toEvent);
}

/** Bytes of an event's JSON besides its data (ids, scope, names, timestamps), as an estimate. */
const EVENT_OVERHEAD_BYTES = 250;

/**
 * Events after `afterId`, ascending, at most `limit` and about `maxBytes` of JSON: the first event
 * always (one larger than the budget still goes out, alone), then events while the bytes before
 * them stay under the budget. Postgres sizes them in two steps so that a page of huge events never
 * costs more than the budget to detoast: the stored (possibly compressed) size picks candidates,
 * which bounds what is decompressed; the text length of the candidates then gives the estimate.
 * The caller measures the exact JSON and may cut further.
 */
export async function readEventsWithin(
  db: Queryable,
  scope: string,
  afterId: number,
  limit: number,
  maxBytes: number,
): Promise<SyncEvent[]> {
  const { rows } = await db.query<EventRow>(
    `WITH page AS (
       SELECT scope, id, model, model_id, action, data, mutation_id, created_at,
              coalesce(pg_column_size(data), 0) AS stored
       FROM sync_events WHERE scope = $1 AND id > $2 ORDER BY id LIMIT $3
     ), stored AS (
       SELECT *, sum(stored) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) - stored AS stored_before FROM page
     ), candidates AS (
       SELECT *, coalesce(octet_length(data::text), 4) + ${EVENT_OVERHEAD_BYTES} AS raw
       FROM stored WHERE stored_before < $4
     ), sized AS (
       SELECT *, sum(raw) OVER (ORDER BY id ROWS UNBOUNDED PRECEDING) - raw AS raw_before FROM candidates
     )
     SELECT scope, id, model, model_id, action, data, mutation_id, created_at
     FROM sized WHERE raw_before < $4 ORDER BY id`,
    [scope, afterId, limit, maxBytes],
  );
  return rows.map(toEvent);
}

export interface ScopeHead {
  /** Id of the last committed event (0 when the scope has none). */
  lastId: number;
  /** Every event with id <= prunedThrough was removed by retention. */
  prunedThrough: number;
}

export async function readHead(db: Queryable, scope: string): Promise<ScopeHead> {
  const { rows } = await db.query<{ last_id: number; pruned_through: number }>(
    'SELECT last_id, pruned_through FROM sync_scopes WHERE scope = $1',
    [scope],
  );
  const row = rows[0];
  return { lastId: row?.last_id ?? 0, prunedThrough: row?.pruned_through ?? 0 };
}

/** Last committed id of each scope (0 for scopes with no events), in one query. */
export async function readHeads(db: Queryable, scopes: readonly string[]): Promise<Map<string, number>> {
  const heads = new Map<string, number>(scopes.map((s) => [s, 0]));
  if (scopes.length === 0) return heads;
  const { rows } = await db.query<{ scope: string; last_id: number }>(
    'SELECT scope, last_id FROM sync_scopes WHERE scope = ANY($1::text[])',
    [scopes],
  );
  for (const row of rows) heads.set(row.scope, row.last_id);
  return heads;
}

/**
 * Deletes events older than `before`, at most `batchSize` scopes' worth per call, always a prefix
 * of each scope's log (everything up to the newest expired id), and records `pruned_through` so
 * that a cursor older than the retained log is answered with `reset_required`. Returns the number
 * of events deleted; call again until it returns 0.
 */
export async function pruneEvents(db: Queryable, before: Date, batchSize = 1000): Promise<number> {
  const { rows } = await db.query<{ deleted: number }>(
    `WITH expired AS (
       SELECT scope, max(id) AS upto FROM sync_events WHERE created_at < $1
       GROUP BY scope ORDER BY scope LIMIT $2
     ),
     marked AS (
       UPDATE sync_scopes s SET pruned_through = GREATEST(s.pruned_through, e.upto)
       FROM expired e WHERE s.scope = e.scope
     ),
     deleted AS (
       DELETE FROM sync_events ev USING expired e WHERE ev.scope = e.scope AND ev.id <= e.upto
       RETURNING 1
     )
     SELECT count(*)::int AS deleted FROM deleted`,
    [before, batchSize],
  );
  return rows[0]?.deleted ?? 0;
}
