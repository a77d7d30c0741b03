import { randomBytes } from 'node:crypto';
import { createPool, migrate, type Pool } from '@openagents/sync-server-kit';
import pg from 'pg';

/** The server tests run against: the machine's Postgres unless TEST_DATABASE_URL says otherwise. */
export const TEST_PG_ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  pool: Pool;
  /** Drops the database (closing the pool first). */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database with a unique name, so test files can run in parallel against one
 * Postgres without seeing each other's rows.
 */
export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `oas_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_ADMIN_URL);
  url.pathname = `/${name}`;
  await migrate(url.toString());
  const pool = createPool({ url: url.toString(), max: 10 });
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end().catch(() => {});
      const a = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}
