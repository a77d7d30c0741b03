import { join } from 'node:path';
import { ApiConfigSchema } from '@openagents/sync-api-service';
import { DeltaConfigSchema } from '@openagents/sync-delta-service';
import { GatewayEnv } from '@openagents/sync-gateway-service';
import {
  bool,
  jwtSecret,
  loadEnv,
  poolSize,
  port,
  positiveInt,
  postgresUrl,
  redisUrl,
} from '@openagents/sync-server-kit';
import { z } from 'zod';

/** The gateway's variables but DELTA_URL: the standalone server reads the log in-process. */
const { DELTA_URL: _deltaUrl, ...gatewayVariables } = GatewayEnv.shape;

/**
 * Standalone mode: everything in one process on one port, for development and demos. It reads
 * the variables of the api, delta and gateway tables (same names, types and limits: each is
 * defined once, in its service or in server-kit), with the defaults a single process wants, plus
 * its own below. Empty strings count as unset.
 */
export const StandaloneEnv = z.object({
  ...ApiConfigSchema.shape,
  ...DeltaConfigSchema.shape,
  ...gatewayVariables,
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
  /**
   * When unset, a secret is generated once and kept under DATA_DIR (dev only), and the console
   * gets a short-lived token for the demo org. When set, no token is embedded or printed.
   */
  SYNC_JWT_SECRET: jwtSecret.optional(),
  /**
   * Connections of the one pool every part shares (the API's writes, the delta service's reads and
   * pruner, the gateway's readiness check), with READ_STATEMENT_TIMEOUT_MS as its statement timeout.
   * Reads hold at most half of it at once, so writes always find the other half.
   */
  PG_POOL_MAX: poolSize.default(10),
  /** Bootstrap pages read at once (one process shares its cores with everything else). */
  MAX_CONCURRENT_BOOTSTRAPS: positiveInt.default(2),
  /** Where the embedded Postgres cluster and the dev secret live (git-ignored). */
  DATA_DIR: z.string().default(join(process.cwd(), '.data', 'standalone')),
  /** Port of the embedded Postgres. */
  EMBEDDED_PG_PORT: port.default(54329),
  /** Serve the console at / (built on first start when missing). */
  SERVE_CONSOLE: bool.default(true),
});
export type StandaloneConfig = z.infer<typeof StandaloneEnv>;

export function loadStandaloneConfig(
  env: Record<string, string | undefined> = process.env,
): StandaloneConfig {
  return loadEnv(StandaloneEnv, env);
}
