import {
  type Auth,
  authOptionsFromEnv,
  type Bus,
  createAuth,
  createPool,
  createRedisBus,
  createRegistry,
  createRequestTracker,
  type Logger,
  migrate,
  type Pool,
  type Registry,
  registerPoolMetrics,
  type Service,
} from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { createApiApp } from './app';
import type { ApiConfig } from './config';

export interface ApiService extends Service {
  /** The HTTP app (routes only; mount it elsewhere or call `app.request` in tests). */
  readonly app: Hono;
  /** The app's fetch, counting in-flight requests so `drain` can wait for them: serve this one. */
  readonly fetch: (request: Request) => Promise<Response>;
  readonly registry: Registry;
  /** Requests being handled right now. */
  inFlight(): number;
}

export interface ApiServiceDeps {
  config: ApiConfig;
  log: Logger;
  /** Defaults built from config; pass them to share or replace. */
  pool?: Pool;
  bus?: Bus;
  auth?: Auth;
  registry?: Registry;
}

/**
 * A mutation worker with the shared lifecycle. `start` applies migrations (MIGRATE_ON_START);
 * `drain` turns /readyz to 503, refuses nothing that is already in flight and resolves once the
 * in-flight requests are done (at most `drainTimeoutMs`); `stop` closes the bus and the pool.
 * Opening the port is left to `main.ts`.
 */
export function createApiService(
  deps: ApiServiceDeps,
  options: { drainTimeoutMs?: number } = {},
): ApiService {
  const { config, log } = deps;
  const registry = deps.registry ?? createRegistry('api');
  const pool =
    deps.pool ??
    createPool({ url: config.DATABASE_URL, max: config.PG_POOL_MAX, applicationName: 'sync-api' });
  if (!deps.pool) registerPoolMetrics(registry, pool, config.PG_POOL_MAX);
  const bus =
    deps.bus ??
    createRedisBus({
      url: config.REDIS_URL,
      cluster: config.REDIS_CLUSTER,
      log,
      ...(config.REDIS_CHANNEL_PREFIX ? { channelPrefix: config.REDIS_CHANNEL_PREFIX } : {}),
    });
  const auth = deps.auth ?? createAuth(authOptionsFromEnv(config));
  const requests = createRequestTracker();

  const app = createApiApp({ pool, bus, auth, log, registry, config, isDraining: () => requests.draining });

  return {
    app: app as unknown as Hono,
    fetch: requests.wrap((request) => app.fetch(request)),
    registry,
    inFlight: () => requests.inFlight,
    async start() {
      if (config.MIGRATE_ON_START) await migrate(config.DATABASE_URL, log);
      log.info({ bus: bus.kind, poolMax: config.PG_POOL_MAX }, 'api ready');
    },
    drain: () => requests.drain(options.drainTimeoutMs ?? 25_000),
    async stop() {
      await bus.close();
      await pool.end();
    },
  };
}
