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

/** Runs one statement as the admin (creating and dropping databases). */
async function asAdmin(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/**
 * A fresh, migrated database with a unique name, so test files can run in parallel against one
 * Postgres without seeing each other's rows.
 */
export function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  return createEmptyDatabase(label, migrate);
}

/**
 * A fresh database with a unique name, prepared by `prepare(url)` before its pool opens; nothing
 * migrated unless `prepare` does it (another checkout's migrations, only some of them).
 */
export async function createEmptyDatabase(
  label: string,
  prepare: (url: string) => Promise<unknown> = async () => {},
): Promise<TestDatabase> {
  const name = `oas_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await asAdmin(`CREATE DATABASE ${name}`);
  const url = new URL(TEST_PG_ADMIN_URL);
  url.pathname = `/${name}`;
  await prepare(url.toString());
  const pool = createPool({ url: url.toString(), max: 10 });
  return {
    url: url.toString(),
    pool,
    async drop() {
      await pool.end().catch(() => {});
      await asAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
