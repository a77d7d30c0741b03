import {
  authOptionsFromEnv,
  createAuth,
  createServiceShell,
  type DeltaSource,
  type Logger,
  pingDatabase,
  poolOptionsFrom,
  type Registry,
  type Service,
  type SharedDeps,
} from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { createDeltaApp } from './app';
import type { DeltaConfig } from './config';
import { deltaMetricsFor } from './metrics';
import { createPruner, type Pruner } from './pruner';
import { createDeltaReader } from './reader';

export interface DeltaService extends Service {
  /** The HTTP app (routes only; mount it elsewhere or call `app.request` in tests). */
  readonly app: Hono;
  /** The app's fetch, counting in-flight requests so `drain` can wait for them: serve this one. */
  readonly fetch: (request: Request) => Promise<Response>;
  readonly reader: DeltaSource;
  readonly pruner: Pruner;
  readonly registry: Registry;
  /** Requests being handled right now. */
  inFlight(): number;
}

export interface DeltaServiceDeps extends SharedDeps {
  config: DeltaConfig;
  log: Logger;
}

/**
 * A delta service with the shared lifecycle. `start` applies migrations (MIGRATE_ON_START) and
 * starts the pruner; `drain` turns /readyz to 503, stops the pruner and resolves once in-flight
 * requests are done (at most `drainTimeoutMs`); `stop` closes the pool it created (a pool handed
 * in is the caller's). Opening the port is left to `main.ts`.
 */
export function createDeltaService(
  deps: DeltaServiceDeps,
  options: { drainTimeoutMs?: number } = {},
): DeltaService {
  const { config, log } = deps;
  const shell = createServiceShell('delta', deps, options);
  const { registry } = shell;
  const pool = shell.pool(poolOptionsFrom(config, 'sync-delta', config.READ_STATEMENT_TIMEOUT_MS));
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
    isDraining: shell.isDraining,
  });

  return {
    app,
    fetch: shell.track((request) => app.fetch(request)),
    reader,
    pruner,
    registry,
    inFlight: shell.inFlight,
    ...shell.lifecycle(
      {
        async start() {
          pruner.start();
          log.info({ poolMax: config.PG_POOL_MAX, retentionDays: config.RETENTION_DAYS }, 'delta ready');
        },
        drain: () => pruner.stop(),
        stop: () => pruner.stop(),
      },
      config,
    ),
  };
}
