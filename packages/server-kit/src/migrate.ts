import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import type { Logger } from './logger';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations', import.meta.url));

/**
 * Applies pending migrations (versioned SQL files in `packages/server-kit/migrations`, recorded in
 * the `pgmigrations` table by node-pg-migrate). Several services starting at once are safe: the
 * runner takes an advisory lock and the others wait for it, then find nothing left to do.
 */
export async function migrate(databaseUrl: string, log?: Logger): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const ran = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      direction: 'up',
      migrationsTable: 'pgmigrations',
      count: Number.POSITIVE_INFINITY,
      advisoryLockMode: 'wait',
      log: () => {},
      logger: {
        debug() {},
        info() {},
        warn: (m: string) => log?.warn(m),
        error: (m: string) => log?.error(m),
      },
    });
    const names = ran.map((m) => m.name);
    if (names.length > 0) log?.info({ migrations: names }, 'migrations applied');
    return names;
  } finally {
    await client.end();
  }
}
