/**
 * What the append benches share: databases for a checkout (this one's, or another's migrated by
 * that checkout's own migrations, so a change of `sync_commit` is compared too) and CPU read from
 * /proc (of a process, and of a database's Postgres backends).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readCpuSeconds } from '../../../loadtest/bench/rss';
import { createEmptyDatabase, createTestDatabase, type TestDatabase } from '../../../test/support/pg';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** User + system CPU of a process so far, ms (10 ms resolution); NaN once it is gone. */
export function processCpuMs(pid: number): number {
  return readCpuSeconds(pid) * 1000;
}

/**
 * CPU so far of each backend of the database `pool` connects to (not the one asking), or only of
 * those connected as `applicationName`; a backend that ended meanwhile is left out.
 */
export async function backendCpuMs(
  pool: TestDatabase['pool'],
  applicationName?: string,
): Promise<Map<number, number>> {
  const { rows } = await pool.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND ($1::text IS NULL OR application_name = $1)`,
    [applicationName ?? null],
  );
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    const ms = processCpuMs(pid);
    if (!Number.isNaN(ms)) cpu.set(pid, ms);
  }
  return cpu;
}

/** Backend CPU between two samples; a backend that started in between counts from zero. */
export function backendCpuBetween(start: Map<number, number>, end: Map<number, number>): number {
  let ms = 0;
  for (const [pid, cpu] of end) ms += cpu - (start.get(pid) ?? 0);
  return ms;
}

/**
 * A database for `root`'s code: this checkout's test database, or for another checkout one
 * migrated by that checkout's own migrations (its `sync_commit`).
 */
export async function createBenchDatabase(root: string, label: string): Promise<TestDatabase> {
  if (root === ROOT) return createTestDatabase(label);
  return createEmptyDatabase(`${label}_base`, async (url) => {
    const migrated = spawn(process.execPath, ['--import', 'tsx', 'packages/server-kit/src/migrate-cli.ts'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const code = await new Promise<number | null>((r) => migrated.once('exit', r));
    if (code !== 0) throw new Error(`migrating the database of ${root} exited with ${code}`);
  });
}

/** Text like a model's reply (words, some astral), `chars` UTF-16 units long. */
export function replyText(chars: number): string {
  const words = [' the', ' stream', ' of', ' tokens', ' is', ' durable', ' and', ' ordered', ' ✓', ' 🙂'];
  let text = '';
  for (let i = 0; text.length < chars; i++) text += words[i % words.length];
  text = text.slice(0, chars);
  // Never half a surrogate pair at the end.
  return /[\ud800-\udbff]$/.test(text) ? `${text.slice(0, -1)} ` : text;
}
