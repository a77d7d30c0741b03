import { type ApiService, createApiService } from '@openagents/sync-api-service';
import { createConsoleAssets, DEMO_ORG_ID, ensureConsoleBuilt } from '@openagents/sync-console';
import { createDeltaService, type DeltaService } from '@openagents/sync-delta-service';
import { createGatewayService, type GatewayService } from '@openagents/sync-gateway-service';
import {
  type Auth,
  authOptionsFromEnv,
  composeServices,
  createAuth,
  createMemoryBus,
  createServiceShell,
  type Logger,
  pingDatabase,
  poolOptionsFrom,
  type Service,
  sharePool,
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

/**
 * Connections of the one pool that reads may hold at once: half of PG_POOL_MAX (at least one), so
 * writes always have the other half. With PG_POOL_MAX 1 reads and writes take turns on it.
 */
export function readConnections(poolMax: number): number {
  return Math.max(1, Math.floor(poolMax / 2));
}

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

/** The services the standalone server runs, each built by its own factory. */
export interface StandaloneParts {
  api: ApiService;
  delta: DeltaService;
  gateway: GatewayService;
}

export type StaticHandler = (request: Request) => Promise<Response | undefined>;

/**
 * The whole system in one process on one port: the api, delta and gateway services built by
 * their own factories, sharing one bus, one registry, one auth and one Postgres pool (PG_POOL_MAX),
 * of which reads hold at most half (`readConnections`). The gateway's uWebSockets.js server takes
 * the `/sync` upgrade and the ops routes, and bridges every other HTTP request to the mutation API
 * (`/api/*`), the delta service (`/sync/bootstrap`, `/sync/delta`, `/sync/heads`) and the console
 * (`/`). Postgres is embedded when DATABASE_URL is unset; the bus is in-process when REDIS_URL is.
 * `drain` drains every part; `stop` stops them in reverse order of start.
 */
export function createStandalone(options: {
  config: StandaloneConfig;
  log: Logger;
  /** A built console to serve instead of building `packages/console` (tests). */
  consoleDistDir?: string;
}): Service & { info(): StandaloneInfo; parts(): StandaloneParts } {
  const { config, log } = options;
  let info: StandaloneInfo | undefined;
  let running: StandaloneParts | undefined;
  const parts: Service[] = [];
  const whole = composeServices(parts);

  return {
    info() {
      if (!info) throw new Error('standalone server not started');
      return info;
    },
    parts() {
      if (!running) throw new Error('standalone server not started');
      return running;
    },
    async start() {
      const database = await openDatabase(config, log);
      parts.push(database.part);
      const secret = config.SYNC_JWT_SECRET ?? loadOrCreateDevSecret(config.DATA_DIR);
      const auth = createAuth({ ...authOptionsFromEnv(config), secret });
      const shell = createServiceShell('standalone', {
        log,
        ...(config.REDIS_URL ? {} : { bus: createMemoryBus() }),
      });
      const { registry } = shell;
      // The variables as every part reads them, with the database and secret this process uses.
      const resolved = { ...config, DATABASE_URL: database.url, SYNC_JWT_SECRET: secret };
      // One pool for every part, sized by PG_POOL_MAX like each service's own; its statements are
      // capped by READ_STATEMENT_TIMEOUT_MS, the delta service's cap on its reads.
      const pool = shell.pool(poolOptionsFrom(resolved, 'sync-standalone', config.READ_STATEMENT_TIMEOUT_MS));
      const bus = shell.bus(config);
      const shared = { log, auth, bus, registry };
      // Migrations run once, with the API (MIGRATE_ON_START).
      const api = createApiService({ ...shared, pool, config: resolved });
      // Reads (the delta service's routes and pruner, the gateway's reads through its reader) go
      // through a share of the pool: a flood of them cannot take the connections writes need.
      const delta = createDeltaService({
        ...shared,
        pool: sharePool(pool, readConnections(config.PG_POOL_MAX)),
        config: { ...resolved, MIGRATE_ON_START: false },
      });

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
      const staticFiles = await consoleFiles(config, consoleToken, options.consoleDistDir);
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

      let acceptsHost = hostMatcher(config.ALLOWED_HOSTS, config.PORT);
      const gateway = createGatewayService({
        ...shared,
        config: resolved,
        delta: delta.reader,
        host: config.HOST,
        serving: {
          http,
          // The bridge refuses a larger body before buffering it, with the API's own limit.
          httpBodyLimitBytes: config.BODY_LIMIT_BYTES,
          // The streaming upload reads its body as it arrives and bounds it (each line by
          // BODY_LIMIT_BYTES, the stream by 64 MiB): its pieces are acknowledged as they come.
          httpStreamsBody: streamsBody,
          readiness: async () => ({ database: await pingDatabase(pool) }),
          // DNS rebinding: a page on evil.example resolving to 127.0.0.1 still sends its own Host.
          acceptsHost: (host) => acceptsHost(host),
        },
      });
      // The shell's pools and bus are stopped after every part that uses them.
      parts.push(shell.lifecycle({}), api, delta, gateway);
      running = { api, delta, gateway };
      await whole.start();
      const port = gateway.gateway.port;
      acceptsHost = hostMatcher(config.ALLOWED_HOSTS, port);

      const host = ['127.0.0.1', '0.0.0.0', '::', '::1'].includes(config.HOST) ? 'localhost' : config.HOST;
      info = {
        host: config.HOST,
        url: `http://${host}:${port}`,
        wsUrl: `ws://${host}:${port}/sync`,
        devToken,
        database: database.description,
        bus: config.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process',
      };
    },
    drain: () => whole.drain(),
    async stop() {
      await whole.stop().catch((err: unknown) => log.warn({ err }, 'error while stopping'));
    },
  };
}

/** `POST /api/<path>/<id>/append-stream`: the requests whose body the bridge streams to the API. */
export function streamsBody(method: string, path: string): boolean {
  return method === 'POST' && /^\/api\/[^/]+\/[^/]+\/append-stream$/.test(path);
}

/** DATABASE_URL, or an embedded PostgreSQL under DATA_DIR, as a part to stop last. */
async function openDatabase(
  config: StandaloneConfig,
  log: Logger,
): Promise<{ url: string; description: string; part: Service }> {
  const idle = async () => {};
  if (config.DATABASE_URL) {
    return {
      url: config.DATABASE_URL,
      description: 'DATABASE_URL',
      part: { start: idle, drain: idle, stop: idle },
    };
  }
  const embedded = await startEmbeddedPostgres({
    dataDir: config.DATA_DIR,
    port: config.EMBEDDED_PG_PORT,
    onLog: (line) => log.debug({ postgres: line }, 'embedded postgres'),
  });
  return {
    url: embedded.url,
    description: `embedded PostgreSQL (${config.DATA_DIR}/pg, port ${config.EMBEDDED_PG_PORT})`,
    part: { start: idle, drain: idle, stop: () => embedded.stop() },
  };
}

/** The console's files (built on first use), each page given a fresh token when there is one. */
async function consoleFiles(
  config: StandaloneConfig,
  consoleToken: ReturnType<typeof createConsoleTokenSource> | undefined,
  consoleDistDir: string | undefined,
): Promise<StaticHandler | undefined> {
  if (!config.SERVE_CONSOLE) return undefined;
  const distDir = consoleDistDir ?? (await ensureConsoleBuilt()).distDir;
  const assets = createConsoleAssets({
    distDir,
    config: () => (consoleToken ? { token: consoleToken.current() } : undefined),
  });
  return async (request) => {
    await consoleToken?.fresh();
    return assets.handle(request);
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
