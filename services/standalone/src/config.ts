import { join } from 'node:path';
import {
  authEnv,
  corsEnv,
  jwtSecret,
  loadEnv,
  logLevel,
  port,
  positiveInt,
  postgresUrl,
  redisUrl,
} from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * Standalone mode: everything in one process on one port, for development and demos.
 * Each variable in one line; empty strings count as unset.
 */
export const StandaloneEnv = z.object({
  /** The one port serving the API, delta, WebSocket, console and ops routes. */
  PORT: port.default(8787),
  /** Interface to listen on: loopback only unless set (e.g. `0.0.0.0` in a container; then set ALLOWED_HOSTS). */
  HOST: z.string().min(1).max(255).default('127.0.0.1'),
  /**
   * Comma list of Host headers answered (`name` for any port, `name:port`, `*` for any); others get
   * 403, so a DNS-rebinding page cannot read the server. Default: localhost, 127.0.0.1 and [::1] on PORT.
   */
  ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== ''),
    )
    .optional(),
  /** When unset, an embedded PostgreSQL runs with its cluster under DATA_DIR. */
  DATABASE_URL: postgresUrl.optional(),
  /** When unset, the in-process bus carries events (a single process needs nothing more). */
  REDIS_URL: redisUrl.optional(),
  REDIS_CHANNEL_PREFIX: z.string().max(64).optional(),
  ...authEnv,
  /**
   * When unset, a secret is generated once and kept under DATA_DIR (dev only), and the console
   * gets a short-lived token for the demo org. When set, no token is embedded or printed.
   */
  SYNC_JWT_SECRET: jwtSecret.optional(),
  ...corsEnv,
  /** Where the embedded Postgres cluster and the dev secret live (git-ignored). */
  DATA_DIR: z.string().default(join(process.cwd(), '.data', 'standalone')),
  /** Port of the embedded Postgres. */
  EMBEDDED_PG_PORT: port.default(54329),
  /** Serve the console at / (built on first start when missing). */
  SERVE_CONSOLE: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /**
   * Largest request body in bytes, for the API and for the bridge that reads it off the socket
   * (413 beyond; a body is read only after its bearer token verifies). Default 1 MiB.
   */
  BODY_LIMIT_BYTES: positiveInt.default(1024 * 1024),
  LOG_LEVEL: logLevel.default('info'),
});
export type StandaloneConfig = z.infer<typeof StandaloneEnv>;

export function loadStandaloneConfig(
  env: Record<string, string | undefined> = process.env,
): StandaloneConfig {
  return loadEnv(StandaloneEnv, env);
}
