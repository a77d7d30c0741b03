import { createApiApp } from '@openagents/sync-api-service';
import { createConsoleAssets, DEMO_ORG_ID, ensureConsoleBuilt } from '@openagents/sync-console';
import {
  createDeltaApp,
  createDeltaReader,
  createPruner,
  deltaMetricsFor,
} from '@openagents/sync-delta-service';
import { createGateway, gatewayDefaults } from '@openagents/sync-gateway-service';
import {
  type Auth,
  authOptionsFromEnv,
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
import { hostMatcher } from './host-check';

/**
 * What the console page and the printed dev token may do: the demo org the console opens and
 * agents' scopes (their chats), nothing else — never `*`. Other orgs need a token of their own
 * (`npm run token`).
 */
export const CONSOLE_SCOPES = [`org:${DEMO_ORG_ID}`, 'agent:*'] as const;
/** Lifetime of the console's and the printed token: a working day, re-minted as it runs down. */
export const CONSOLE_TOKEN_TTL_SECONDS = 8 * 3600;

/** Everything `npm start` prints: where to point a browser or a client, and a token to do it with. */
export interface StandaloneInfo {
  url: string;
  wsUrl: string;
  /** A token for CONSOLE_SCOPES; undefined when the operator supplied SYNC_JWT_SECRET. */
  devToken: string | undefined;
  /** The interface the port is bound to (HOST). */
  host: string;
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
  /** A built console to serve instead of building `packages/console` (tests). */
  consoleDistDir?: string;
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
      const auth = createAuth({ ...authOptionsFromEnv(config), secret });
      const pool = createPool({ url: databaseUrl, max: 10, applicationName: 'sync-standalone' });
      stopAll.unshift(() => pool.end());
      const bus: Bus = config.REDIS_URL
        ? createRedisBus({ url: config.REDIS_URL, channelPrefix: config.REDIS_CHANNEL_PREFIX, log })
        : createMemoryBus();
      stopAll.unshift(() => bus.close());

      const registry = createRegistry('standalone');
      registerPoolMetrics(registry, pool, 10);
      // Reads get their own, smaller pool with a statement timeout (as the delta service has its
      // own): a flood of bootstraps cannot take the connections the API's writes need.
      const readPool = createPool({
        url: databaseUrl,
        max: 4,
        applicationName: 'sync-standalone-reads',
        statementTimeoutMs: 15_000,
      });
      stopAll.unshift(() => readPool.end());
      const reader = createDeltaReader({ pool: readPool });
      const api = createApiApp({
        pool,
        bus,
        auth,
        log,
        registry,
        config: { ALLOWED_ORIGINS: config.ALLOWED_ORIGINS, BODY_LIMIT_BYTES: config.BODY_LIMIT_BYTES },
      });
      const delta = createDeltaApp({
        reader,
        auth,
        log,
        registry,
        config: {
          allowedOrigins: config.ALLOWED_ORIGINS,
          readRatePerSecond: 20,
          readBurst: 100,
          maxConcurrentBootstraps: 2,
        },
      });
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

      // With the generated dev secret, the console page carries a short-lived token for the demo
      // org, so it connects out of the box. With the operator's own secret nothing is embedded:
      // the console asks for a token (mint one with `npm run token`).
      const consoleToken = config.SYNC_JWT_SECRET
        ? undefined
        : createConsoleTokenSource(
            auth,
            Math.min(CONSOLE_TOKEN_TTL_SECONDS, config.SYNC_JWT_MAX_TTL_SECONDS ?? Infinity),
          );
      const devToken = await consoleToken?.fresh();
      let staticFiles: StaticHandler | undefined;
      if (config.SERVE_CONSOLE) {
        const distDir = options.consoleDistDir ?? (await ensureConsoleBuilt()).distDir;
        const assets = createConsoleAssets({
          distDir,
          config: () => (consoleToken ? { token: consoleToken.current() } : undefined),
        });
        staticFiles = async (request) => {
          await consoleToken?.fresh();
          return assets.handle(request);
        };
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
        // The bridge refuses a larger body before buffering it, with the API's own limit.
        httpBodyLimitBytes: config.BODY_LIMIT_BYTES,
        readiness: async () => ({ database: await pingDatabase(pool) }),
        // DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host.
        acceptsHost: (host) => acceptsHost(host),
      });
      let acceptsHost = hostMatcher(config.ALLOWED_HOSTS, config.PORT);
      const port = await gateway.listen(config.PORT, config.HOST);
      acceptsHost = hostMatcher(config.ALLOWED_HOSTS, port);
      gatewayDrain = () => gateway.drain();
      stopAll.unshift(() => gateway.stop());

      const host = ['127.0.0.1', '0.0.0.0', '::', '::1'].includes(config.HOST) ? 'localhost' : config.HOST;
      info = {
        host: config.HOST,
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

/**
 * The console's token: minted on first use and again once half its lifetime has passed, so every
 * page load gets one with hours left while none lives longer than `ttlSeconds`.
 */
function createConsoleTokenSource(auth: Auth, ttlSeconds: number) {
  let token: { value: string; renewAt: number } | undefined;
  return {
    async fresh(): Promise<string> {
      if (!token || Date.now() >= token.renewAt) {
        const value = await auth.sign({ sub: 'dev', scopes: [...CONSOLE_SCOPES] }, ttlSeconds);
        token = { value, renewAt: Date.now() + (ttlSeconds * 1000) / 2 };
      }
      return token.value;
    },
    current: () => token?.value,
  };
}
