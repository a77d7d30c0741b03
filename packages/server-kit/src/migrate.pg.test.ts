import { readdirSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { MIGRATIONS_DIR, migrate } from './migrate';

describe('migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('migrate');
  });
  afterAll(() => db.drop());

  it('creates the domain tables and the hash-partitioned log', async () => {
    const { rows } = await db.pool.query<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE relname IN ('agents','messages','payments','code_changes','reasoning_steps','sync_scopes','sync_events','idempotency_keys') ORDER BY relname`,
    );
    expect(rows.map((r) => r.relname)).toHaveLength(8);
    const parts = await db.pool.query(
      `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'sync_events'::regclass`,
    );
    expect(parts.rows[0].n).toBe(16);
  });

  it('is idempotent and safe when several processes run it at once', async () => {
    const results = await Promise.all([migrate(db.url), migrate(db.url), migrate(db.url)]);
    expect(results.flat()).toEqual([]);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query('SELECT count(*)::int AS n FROM pgmigrations');
    await client.end();
    expect(rows[0].n).toBe(readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).length);
  });
});
