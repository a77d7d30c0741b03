import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@openagents/sync-server-kit';
import { createTestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_JWT_SECRET } from '../../../test/support/tokens';
import { loadStandaloneConfig } from '../src/config';
import { createStandalone } from '../src/standalone';

/**
 * A started standalone server on a free port over a fresh test database (not the embedded one:
 * faster), with the test secret, no console and silent logs; `env` adds or overrides variables.
 * `close` stops it and removes what it made.
 */
export async function startTestStandalone(name: string, env: Record<string, string> = {}) {
  const db = await createTestDatabase(name);
  const dataDir = mkdtempSync(join(tmpdir(), `oas-${name}-`));
  const config = loadStandaloneConfig({
    PORT: String(await freePort()),
    DATABASE_URL: db.url,
    SYNC_JWT_SECRET: TEST_JWT_SECRET,
    DATA_DIR: dataDir,
    SERVE_CONSOLE: 'false',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const server = createStandalone({ config, log: createLogger({ name, level: 'silent' }) });
  await server.start();
  return {
    server,
    async close() {
      await server.stop();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
