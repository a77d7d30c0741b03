import {
  type Auth,
  authOptionsFromEnv,
  createAuth,
  createPool,
  createRegistry,
  createRequestTracker,
  type Logger,
  migrate,
  type Pool,
  pingDatabase,
  type Registry,
  registerPoolMetrics,
  type Service,
} from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { createDeltaApp } from './app';
import type { DeltaConfig } from './config';
import { deltaMetricsFor } from './metrics';
import { createPruner, type Pruner } from './pruner';
import { createDeltaReader, type DeltaReader } from './reader';

export interface DeltaService extends Service {
  /** The HTTP app (routes only; mount it elsewhere or call `app.request` in tests). */
  readonly app: Hono;
  /** The app's fetch, counting in-flight requests so `drain` can wait for them: serve this one. */
  readonly fetch: (request: Request) => Promise<Response>;
  readonly reader: DeltaReader;
  readonly pruner: Pruner;
  readonly registry: Registry;
  /** Requests being handled right now. */
  inFlight(): number;
}

export interface DeltaServiceDeps {
  config: DeltaConfig;
  log: Logger;
  /** Defaults built from config; pass them to share or replace (a shared pool is not closed). */
  pool?: Pool;
  auth?: Auth;
  registry?: Registry;
}

/**
 * A delta service with the shared lifecycle. `start` applies migrations (MIGRATE_ON_START) and
 * starts the pruner; `drain` turns /readyz to 503, stops the pruner and resolves once in-flight
 * requests are done (at most `drainTimeoutMs`); `stop` closes the pool it created. Opening the
 * port is left to `main.ts`.
 */
export function createDeltaService(
  deps: DeltaServiceDeps,
  options: { drainTimeoutMs?: number } = {},
): DeltaService {
  const { config, log } = deps;
  const registry = deps.registry ?? createRegistry('delta');
  const pool =
    deps.pool ??
    createPool({
      url: config.DATABASE_URL,
      max: config.PG_POOL_MAX,
      applicationName: 'sync-delta',
      statementTimeoutMs: config.READ_STATEMENT_TIMEOUT_MS,
    });
  if (!deps.pool) registerPoolMetrics(registry, pool, config.PG_POOL_MAX);
  const auth = deps.auth ?? createAuth({ ...authOptionsFromEnv(config), acceptServiceTokens: true });
  const reader = createDeltaReader({
    pool,
    bootstrapPageBytes: config.BOOTSTRAP_PAGE_BYTES,
    deltaPageBytes: config.DELTA_PAGE_BYTES,
  });
  const pruner = createPruner({
    pool,
    retentionDays: config.RETENTION_DAYS,
    idempotencyRetentionHours: config.IDEMPOTENCY_RETENTION_HOURS,
    intervalMs: config.PRUNE_INTERVAL_SECONDS * 1000,
    log,
    metrics: deltaMetricsFor(registry),
  });
  const requests = createRequestTracker();

  const app = createDeltaApp({
    reader,
    auth,
    log,
    registry,
    config: {
      readShareMaxAgeMs: config.READ_SHARE_MAX_AGE_SECONDS * 1000,
      readShareCacheBytes: config.READ_SHARE_CACHE_MIB * 1024 * 1024,
      allowedOrigins: config.ALLOWED_ORIGINS,
      readRatePerSecond: config.READ_RATE_PER_SECOND,
      readBurst: config.READ_BURST,
      maxConcurrentBootstraps: config.MAX_CONCURRENT_BOOTSTRAPS,
    },
    dependencies: async () => ({ postgres: await pingDatabase(pool) }),
    isDraining: () => requests.draining,
  });

  return {
    app,
    fetch: requests.wrap((request) => app.fetch(request)),
    reader,
    pruner,
    registry,
    inFlight: () => requests.inFlight,
    async start() {
      if (config.MIGRATE_ON_START) await migrate(config.DATABASE_URL, log);
      pruner.start();
      log.info({ poolMax: config.PG_POOL_MAX, retentionDays: config.RETENTION_DAYS }, 'delta ready');
    },
    async drain() {
      const drained = requests.drain(options.drainTimeoutMs ?? 25_000);
      await pruner.stop();
      await drained;
    },
    async stop() {
      await pruner.stop();
      if (!deps.pool) await pool.end();
    },
  };
}
