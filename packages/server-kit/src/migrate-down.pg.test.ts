import { readdirSync } from 'node:fs';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { MIGRATIONS_DIR } from './migrate';

const MIGRATIONS = readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length;

/** Runs `count` migrations of the shipped directory up or down. */
async function run(url: string, direction: 'up' | 'down', count: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction,
      count,
      migrationsTable: 'pgmigrations',
      log: () => {},
    });
  } finally {
    await client.end();
  }
}

/**
 * What the newest migrations change, as Postgres reports it: every `sync_*` function's full
 * definition (its settings included) and how each table's columns are stored and compressed.
 */
async function schemaState(url: string): Promise<{ functions: string[]; columns: string[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const functions = await client.query<{ def: string }>(
      `SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'sync\\_%'
        ORDER BY p.proname, pg_get_function_identity_arguments(p.oid)`,
    );
    const columns = await client.query<{ col: string }>(
      `SELECT format('%s.%s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                     coalesce(nullif(a.attcompression, ''), '-')) AS col
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND a.attnum > 0
          AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
    );
    return { functions: functions.rows.map((r) => r.def), columns: columns.rows.map((r) => r.col) };
  } finally {
    await client.end();
  }
}

describe('the newest migration going down', () => {
  let newest: TestDatabase;
  let previous: TestDatabase;
  beforeAll(async () => {
    newest = await createTestDatabase('migrate_down');
    // A deployment on the release before: every migration but the newest, never the newest's Up.
    previous = await createEmptyDatabase('migrate_previous', (url) => run(url, 'up', MIGRATIONS - 1));
  });
  afterAll(async () => {
    await newest.drop();
    await previous.drop();
  });

  it('restores exactly what the migration before it left, and comes back up the same', async () => {
    const up = await schemaState(newest.url);
    const before = await schemaState(previous.url);
    expect(up).not.toEqual(before); // the newest migration changes something this test can see

    await run(newest.url, 'down', 1);
    expect(await schemaState(newest.url)).toEqual(before);

    await run(newest.url, 'up', 1);
    expect(await schemaState(newest.url)).toEqual(up);
    const { rows } = await newest.pool.query('SELECT count(*)::int AS n FROM pgmigrations');
    expect(rows[0].n).toBe(MIGRATIONS);
  });
});
