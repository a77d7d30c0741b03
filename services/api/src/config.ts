import {
  authEnv,
  busEnv,
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

/** One mebibyte: the default cap on a request body. */
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * The mutation worker's environment. Every variable is described once here; docs/api.md carries
 * the same table for operators.
 */
export const ApiConfigSchema = z.object({
  /** HTTP port of the worker (writes plus /healthz, /readyz, /metrics). */
  PORT: port.default(8081),
  /** DATABASE_URL (required) and MIGRATE_ON_START. */
  ...databaseEnv,
  /** Connections in this worker's Postgres pool. */
  PG_POOL_MAX: poolSize.default(20),
  /** REDIS_URL (required: only the standalone server runs without it), REDIS_CLUSTER, REDIS_CHANNEL_PREFIX. */
  ...busEnv,
  /** SYNC_JWT_SECRET (required) and the other token variables: see docs/security.md. */
  ...authEnv,
  /** ALLOWED_ORIGINS: browser origins allowed to call (CORS); none by default. */
  ...corsEnv,
  /** LOG_LEVEL. */
  ...processEnv,
  /** Largest accepted request body in bytes (checked on Content-Length and on the stream). */
  BODY_LIMIT_BYTES: positiveInt.default(DEFAULT_BODY_LIMIT_BYTES),
  /** Sustained requests per second per token subject, per worker; 0 turns rate limiting off. */
  RATE_LIMIT_PER_SECOND: nonNegativeInt.default(200),
  /** Requests a subject may make at once before the sustained rate applies. */
  RATE_LIMIT_BURST: positiveInt.default(400),
  /** Most concurrent requests joined into one transaction (commit pipeline); 1 = off. */
  WRITE_GROUP_MAX: positiveInt.max(64).default(32),
  /** Transactions of one worker in flight at once; writes arriving meanwhile form the next group. */
  WRITE_PIPELINE_DEPTH: positiveInt.max(64).default(2),
  /**
   * When an HTTP write is answered: `publish` once Redis acknowledged its events, `commit` once
   * committed (its publishes issued, acknowledged in the background; a Redis round trip less).
   */
  WRITE_ANSWER_AFTER: z.enum(['publish', 'commit']).default('publish'),
  /** Milliseconds a piece of a streaming upload waits for more of its reply before it commits. */
  STREAM_COALESCE_MS: nonNegativeInt.max(1000).default(0),
  /** A streaming upload's window that holds this many pieces commits before STREAM_COALESCE_MS; 0 = off. */
  STREAM_COALESCE_PIECES: nonNegativeInt.max(100_000).default(0),
  /**
   * Benchmarks only: append each traced streamed piece's stage times (read, handed to commit,
   * round start, committed, published) to this file as NDJSON (stream-trace.ts); unset = off.
   */
  STREAM_TRACE_FILE: z.string().min(1).max(4096).optional(),
  /** Benchmarks only: one streamed record in this many is traced. */
  STREAM_TRACE_EVERY: positiveInt.max(1_000_000).default(8),
});

/** The validated, frozen configuration of a mutation worker. */
export type ApiConfig = Readonly<z.infer<typeof ApiConfigSchema>>;

/**
 * Validates the environment; throws `ConfigError` naming every bad or missing variable
 * (for example `SYNC_JWT_SECRET: ... (got unset)`).
 *
 * @example
 *   const config = loadApiConfig(process.env);
 */
export function loadApiConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  return loadEnv(ApiConfigSchema, env);
}
