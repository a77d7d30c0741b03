import { join } from 'node:path';
import { loadEnv, logLevel, port, postgresUrl, redisUrl } from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * Standalone mode: everything in one process on one port, for development and demos.
 * Each variable in one line; empty strings count as unset.
 */
export const StandaloneEnv = z.object({
  /** The one port serving the API, delta, WebSocket, console and ops routes. */
  PORT: port.default(8787),
  /** When unset, an embedded PostgreSQL runs with its cluster under DATA_DIR. */
  DATABASE_URL: postgresUrl.optional(),
  /** When unset, the in-process bus carries events (a single process needs nothing more). */
  REDIS_URL: redisUrl.optional(),
  REDIS_CHANNEL_PREFIX: z.string().max(64).optional(),
  /** When unset, a secret is generated once and kept under DATA_DIR (dev only). */
  SYNC_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /** Where the embedded Postgres cluster and the dev secret live (git-ignored). */
  DATA_DIR: z.string().default(join(process.cwd(), '.data', 'standalone')),
  /** Port of the embedded Postgres. */
  EMBEDDED_PG_PORT: port.default(54329),
  /** Serve the console at / (built on first start when missing). */
  SERVE_CONSOLE: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  LOG_LEVEL: logLevel.default('info'),
});
export type StandaloneConfig = z.infer<typeof StandaloneEnv>;

export function loadStandaloneConfig(
  env: Record<string, string | undefined> = process.env,
): StandaloneConfig {
  return loadEnv(StandaloneEnv, env);
}
