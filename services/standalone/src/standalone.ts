import { createApiApp } from '@openagents/sync-api-service';
import { createConsoleAssets, ensureConsoleBuilt } from '@openagents/sync-console';
import {
  createDeltaApp,
  createDeltaReader,
  createPruner,
  deltaMetricsFor,
} from '@openagents/sync-delta-service';
import { createGateway, gatewayDefaults } from '@openagents/sync-gateway-service';
import {
  type Bus,
  createAuth,
  createMemoryBus,
  createPool,
  createRedisBus,
  createRegistry,
  type Logger,
  migrate,
  pingDatabase,
  registerPoolMetrics,
  type Service,
} from '@openagents/sync-server-kit';
import type { StandaloneConfig } from './config';
import { loadOrCreateDevSecret } from './dev-secret';
import { startEmbeddedPostgres } from './embedded-postgres';

/** Everything `npm start` prints: where to point a browser or a client, and a token to do it with. */
export interface StandaloneInfo {
  url: string;
  wsUrl: string;
  devToken: string;
  database: string;
  bus: string;
}

export type StaticHandler = (request: Request) => Promise<Response | undefined>;

/**
 * The whole system in one process on one port: the gateway's uWebSockets.js server takes the
 * `/sync` upgrade and the ops routes, and bridges every other HTTP request to the mutation API
 * (`/api/*`), the delta service (`/sync/bootstrap`, `/sync/delta`, `/sync/heads`) and the console
 * (`/`). Postgres is embedded when DATABASE_URL is unset; the bus is in-process when REDIS_URL is.
 */
export function createStandalone(options: {
  config: StandaloneConfig;
  log: Logger;
}): Service & { info(): StandaloneInfo } {
  const { config, log } = options;
  let stopAll: (() => Promise<void>)[] = [];
  let info: StandaloneInfo | undefined;
  let gatewayDrain: (() => Promise<void>) | undefined;

  return {
    info() {
      if (!info) throw new Error('standalone server not started');
      return info;
    },
    async start() {
      let databaseUrl = config.DATABASE_URL;
      let database = 'DATABASE_URL';
      if (!databaseUrl) {
        const embedded = await startEmbeddedPostgres({
          dataDir: config.DATA_DIR,
          port: config.EMBEDDED_PG_PORT,
          onLog: (line) => log.debug({ postgres: line }, 'embedded postgres'),
        });
        stopAll.push(() => embedded.stop());
        databaseUrl = embedded.url;
        database = `embedded PostgreSQL (${config.DATA_DIR}/pg, port ${config.EMBEDDED_PG_PORT})`;
      }
      await migrate(databaseUrl, log);

      const secret = config.SYNC_JWT_SECRET ?? loadOrCreateDevSecret(config.DATA_DIR);
      const auth = createAuth({ secret });
      const pool = createPool({ url: databaseUrl, max: 10, applicationName: 'sync-standalone' });
      stopAll.unshift(() => pool.end());
      const bus: Bus = config.REDIS_URL
        ? createRedisBus({ url: config.REDIS_URL, channelPrefix: config.REDIS_CHANNEL_PREFIX, log })
        : createMemoryBus();
      stopAll.unshift(() => bus.close());

      const registry = createRegistry('standalone');
      registerPoolMetrics(registry, pool, 10);
      const reader = createDeltaReader({ pool });
      const api = createApiApp({ pool, bus, auth, log, registry });
      const delta = createDeltaApp({ reader, auth, log, registry });
      // Retention as in the delta service: 30 days of log, 24 hours of idempotency keys.
      const pruner = createPruner({
        pool,
        retentionDays: 30,
        idempotencyRetentionHours: 24,
        intervalMs: 300_000,
        log,
        metrics: deltaMetricsFor(registry),
      });
      pruner.start();
      stopAll.unshift(() => pruner.stop());

      // The console page is served with the dev token injected, so it connects out of the box.
      const devToken = await auth.sign({ sub: 'dev', scopes: ['*'] }, 30 * 24 * 3600);
      let staticFiles: StaticHandler | undefined;
      if (config.SERVE_CONSOLE) {
        const { distDir } = await ensureConsoleBuilt();
        const assets = createConsoleAssets({ distDir, config: { token: devToken } });
        staticFiles = (request) => assets.handle(request);
      }
      const http = async (request: Request): Promise<Response> => {
        const path = new URL(request.url).pathname;
        if (path.startsWith('/api/') || path === '/api') return api.fetch(request);
        if (path.startsWith('/sync/')) return delta.fetch(request);
        const file = await staticFiles?.(request);
        return (
          file ??
          Response.json({ error: { code: 'not_found', message: `No route for ${path}` } }, { status: 404 })
        );
      };

      const gateway = createGateway({
        config: gatewayDefaults({ PORT: config.PORT, SYNC_JWT_SECRET: secret, LOG_LEVEL: config.LOG_LEVEL }),
        auth,
        bus,
        delta: reader,
        log,
        registry,
        http,
        readiness: async () => ({ database: await pingDatabase(pool) }),
      });
      const port = await gateway.listen(config.PORT);
      gatewayDrain = () => gateway.drain();
      stopAll.unshift(() => gateway.stop());

      const host = 'localhost';
      info = {
        url: `http://${host}:${port}`,
        wsUrl: `ws://${host}:${port}/sync`,
        devToken,
        database,
        bus: config.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process',
      };
    },
    async drain() {
      await gatewayDrain?.();
    },
    async stop() {
      const steps = stopAll;
      stopAll = [];
      for (const step of steps) {
        await step().catch((err: unknown) => log.warn({ err }, 'error while stopping'));
      }
    },
  };
}
