import {
  type Auth,
  authOptionsFromEnv,
  createAuth,
  createServiceShell,
  type Logger,
  poolOptionsFrom,
  type Registry,
  type Service,
  type SharedDeps,
} from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { createApiApp, type NodeBindings } from './app';
import type { ApiConfig } from './config';

export interface ApiService extends Service {
  /** The HTTP app (routes only; mount it elsewhere or call `app.request` in tests). */
  readonly app: Hono;
  /** The app's fetch, counting in-flight requests so `drain` can wait for them: serve this one. */
  readonly fetch: (request: Request, env?: unknown) => Promise<Response>;
  readonly registry: Registry;
  /** Requests being handled right now. */
  inFlight(): number;
}

/**
 * The worker's config and logger, and what it may share instead of building from config (the
 * standalone server hands in one pool, bus, auth and registry; what is handed in is not closed).
 * REDIS_URL may be absent when a bus is handed in.
 */
export interface ApiServiceDeps extends SharedDeps {
  config: Omit<ApiConfig, 'REDIS_URL'> & { REDIS_URL?: string | undefined };
  log: Logger;
  auth?: Auth;
}

/**
 * A mutation worker with the shared lifecycle. `start` applies migrations (MIGRATE_ON_START);
 * `drain` turns /readyz to 503, refuses nothing that is already in flight and resolves once the
 * in-flight requests are done (at most `drainTimeoutMs`); `stop` closes the bus and the pool it
 * created. Opening the port is left to `main.ts`.
 */
export function createApiService(
  deps: ApiServiceDeps,
  options: { drainTimeoutMs?: number } = {},
): ApiService {
  const { config, log } = deps;
  const shell = createServiceShell('api', deps, options);
  const pool = shell.pool(poolOptionsFrom(config, 'sync-api'));
  const bus = shell.bus(config);
  const auth = deps.auth ?? createAuth(authOptionsFromEnv(config));
  const { registry } = shell;
  const app = createApiApp({ pool, bus, auth, log, registry, config, isDraining: shell.isDraining });

  return {
    app: app as unknown as Hono,
    // The server's bindings reach the app: the streaming upload reads the Node request directly.
    fetch: shell.track((request, env) => app.fetch(request, env as NodeBindings | undefined)),
    registry,
    inFlight: shell.inFlight,
    ...shell.lifecycle(
      {
        async start() {
          log.info({ bus: bus.kind, poolMax: config.PG_POOL_MAX }, 'api ready');
        },
      },
      config,
    ),
  };
}
