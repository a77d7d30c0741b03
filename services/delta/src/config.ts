import {
  authEnv,
  corsEnv,
  databaseEnv,
  loadEnv,
  nonNegativeInt,
  poolSize,
  port,
  positiveInt,
  processEnv,
} from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * The delta service's environment, one line per variable. docs/delta.md carries the same table
 * for operators.
 */
export const DeltaConfigSchema = z.object({
  /** HTTP port (reads plus /healthz, /readyz, /metrics). */
  PORT: port.default(8082),
  /** DATABASE_URL (required) and MIGRATE_ON_START. */
  ...databaseEnv,
  /** SYNC_JWT_SECRET (required) and the other token variables: see docs/security.md. */
  ...authEnv,
  /** ALLOWED_ORIGINS: browser origins allowed to call (CORS); none by default. */
  ...corsEnv,
  /** Events older than this many days are pruned; a cursor behind them gets reset_required. */
  RETENTION_DAYS: positiveInt.default(30),
  /** Idempotency keys older than this many hours are pruned; a retry after that writes again. */
  IDEMPOTENCY_RETENTION_HOURS: positiveInt.default(24),
  /** Seconds between pruning runs (one replica at a time prunes, under an advisory lock). */
  PRUNE_INTERVAL_SECONDS: positiveInt.default(300),
  /**
   * Connections in the service's Postgres pool, which serves only reads (and the pruner): its
   * own pool, apart from the workers' write pools. A bootstrap page holds one while it is read.
   */
  PG_POOL_MAX: poolSize.default(10),
  /** statement_timeout of the read pool, in ms: no read holds a connection longer. */
  READ_STATEMENT_TIMEOUT_MS: positiveInt.default(15_000),
  /** Sustained reads per second per token subject (429 beyond); 0 turns the limit off. */
  READ_RATE_PER_SECOND: nonNegativeInt.default(20),
  /** Reads a subject may make at once before the sustained rate applies. */
  READ_BURST: positiveInt.default(100),
  /** Bootstrap pages read at once by this process; 8× that many wait in line, then 503. */
  MAX_CONCURRENT_BOOTSTRAPS: positiveInt.default(4),
  /**
   * The oldest answer a request may be handed when it asks for sharing with `Cache-Control:
   * max-age` (gateways do for resumes and bootstraps), in seconds; 0 turns sharing off.
   */
  READ_SHARE_MAX_AGE_SECONDS: nonNegativeInt.default(10),
  /** Bound of the shared pages and snapshots, in MiB of their JSON. */
  READ_SHARE_CACHE_MIB: positiveInt.default(64),
  /** Most bytes of records (JSON) in one bootstrap page; a larger scope comes with nextCursor. */
  BOOTSTRAP_PAGE_BYTES: positiveInt.default(1024 * 1024),
  /** Most bytes of events (JSON) in one delta page, besides the count limit; cut pages say hasMore. */
  DELTA_PAGE_BYTES: positiveInt.default(1024 * 1024),
  /** LOG_LEVEL. */
  ...processEnv,
});

/** The validated, frozen configuration of a delta service. */
export type DeltaConfig = Readonly<z.infer<typeof DeltaConfigSchema>>;

/**
 * Validates the environment; throws `ConfigError` naming every bad or missing variable
 * (for example `SYNC_JWT_SECRET: ... (got unset)`).
 *
 * @example
 *   const config = loadDeltaConfig(process.env);
 */
export function loadDeltaConfig(env: Record<string, string | undefined> = process.env): DeltaConfig {
  return loadEnv(DeltaConfigSchema, env);
}
