import type { ModelDef, SyncEvent, WriteResult } from '@openagents/sync-protocol';
import type { Pool } from '@openagents/sync-server-kit';

/**
 * The SQL of the write path. A write is one call of the `sync_commit` server-side function
 * (packages/server-kit/migrations/1764590000000_commit-pipeline.sql), which holds every statement
 * of the transaction; values are always parameters (one jsonb document and one text array).
 */

/* The commit statement ----------------------------------------------------------------------- */

/** One member of a commit group as `sync_commit` takes it (see the migration for the contract). */
export interface CommitMemberInput {
  sub: string;
  /** The token's scope patterns, canonical. */
  scopes: string[];
  muts: {
    m: string;
    a: 'insert' | 'update' | 'delete' | 'append';
    id: string;
    /** Values of an insert, fields of an update, `{ field, offset, text }` of an append, null for a delete. */
    v: Record<string, unknown> | null;
    k: string | null;
    h: string;
  }[];
}

/** What `sync_commit` answers for one member. */
export type MemberResult =
  | { ok: { status: 200 | 201; body: WriteResult; replayed: boolean }[] }
  | { at: number; err: { state: string; message: string; detail: string; constraint: string } };

/**
 * Commits a group in one statement, which is its own transaction (autocommit): one round trip.
 * Named, so each pooled connection parses and plans it once and then only binds and executes.
 */
export async function runCommitGroup(
  pool: Pool,
  members: readonly CommitMemberInput[],
  lockScopes: readonly string[],
): Promise<{ results: MemberResult[]; events: SyncEvent[] }> {
  const { rows } = await pool.query<{ r: { results: MemberResult[]; events: SyncEvent[] } }>({
    name: 'sync_commit',
    text: 'SELECT sync_commit($1::jsonb, $2::text[]) AS r',
    values: [JSON.stringify(members), lockScopes],
  });
  return rows[0]!.r;
}

/* Scope of an existing record ---------------------------------------------------------------- */

/**
 * The scope of a stored record, or null when there is none. Read outside any write transaction:
 * the fields a scope derives from never change, so the answer cannot go stale. The table and the
 * scope column come from the model's declaration (identifiers, never input).
 */
export async function selectRecordScope(pool: Pool, model: ModelDef, id: string): Promise<string | null> {
  const { rows } = await pool.query<{ scope: string }>(
    `SELECT $2 || ${model.scope.field} AS scope FROM ${model.table} WHERE id = $1`,
    [id, `${model.scope.prefix}:`],
  );
  return rows[0]?.scope ?? null;
}
