import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_REGISTRY } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { MIGRATIONS_DIR } from './migrate';
import { currentSyncCommit, syncCommitSql } from './model-sql';
import { schemaDifferences } from './schema-check';

/**
 * The model registry (packages/protocol/src/models.ts) is the one declaration of the models;
 * these tests hold the other places to it: the newest sync_commit of the migrations must be what
 * the registry generates, and the database the migrations build must have exactly the tables,
 * columns, types, nullability, defaults, references and indexes the registry declares. Adding a
 * field to models.ts without its migration (or the other way round) fails here.
 */

const migrations = () =>
  readdirSync(MIGRATIONS_DIR)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => ({ name: f, sql: readFileSync(join(MIGRATIONS_DIR, f), 'utf8') }));

describe('model registry and migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('model_sql');
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('the newest sync_commit in the migrations is exactly what the registry generates', () => {
    const current = currentSyncCommit(migrations());
    expect(current).toBeDefined();
    expect(current).toBe(syncCommitSql(MODEL_REGISTRY));
  });

  it('keeps the fast-path settings of sync_commit (1764600000000) across its regeneration', async () => {
    const { rows } = await db.pool.query<{ proconfig: string[] }>(
      "SELECT proconfig FROM pg_proc WHERE proname = 'sync_commit'",
    );
    expect(rows[0]!.proconfig.sort()).toEqual(['enable_seqscan=off', 'plan_cache_mode=force_generic_plan']);
  });

  it('the migrated database has the tables, columns, types, nullability, references and indexes the registry declares', async () => {
    expect(await schemaDifferences(db.pool, MODEL_REGISTRY)).toEqual([]);
  });

  it('names every disagreement: a field the database lacks, a column the registry lacks, a wrong type, pglz on an appendable field', async () => {
    await db.pool.query('ALTER TABLE tool_calls ADD COLUMN extra text');
    await db.pool.query('ALTER TABLE tool_calls ALTER COLUMN result SET NOT NULL');
    await db.pool.query('ALTER TABLE tool_calls DROP COLUMN name');
    await db.pool.query('DROP INDEX tool_calls_message_id_idx');
    await db.pool.query('ALTER TABLE messages ALTER COLUMN content SET COMPRESSION pglz');
    try {
      expect((await schemaDifferences(db.pool, MODEL_REGISTRY)).sort()).toEqual(
        [
          'ToolCall.name: no column tool_calls.name',
          'ToolCall.result: nullable is false in the database, true in the registry',
          'ToolCall: column tool_calls.extra is not declared',
          'ToolCall: index tool_calls_message_id_idx does not exist',
          'Message.content: compression is pglz in the database, lz4 for an appendable field',
        ].sort(),
      );
    } finally {
      await db.pool.query('ALTER TABLE messages ALTER COLUMN content SET COMPRESSION lz4');
      await db.pool.query('ALTER TABLE tool_calls DROP COLUMN extra');
      await db.pool.query('ALTER TABLE tool_calls ALTER COLUMN result DROP NOT NULL');
      await db.pool.query("ALTER TABLE tool_calls ADD COLUMN name text NOT NULL DEFAULT 'x'");
      await db.pool.query('ALTER TABLE tool_calls ALTER COLUMN name DROP DEFAULT');
      await db.pool.query(
        'CREATE INDEX tool_calls_message_id_idx ON tool_calls (message_id) WHERE message_id IS NOT NULL',
      );
    }
    expect(await schemaDifferences(db.pool, MODEL_REGISTRY)).toEqual([]);
  });
});
