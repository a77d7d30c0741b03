import type { Auth } from './auth';
import type { Bus } from './bus';
import { createPool, type Pool, type PoolOptions } from './db';
import type { Service } from './lifecycle';
import type { Logger } from './logger';
import { createRegistry, type Registry, registerPoolMetrics } from './metrics';
import { migrate } from './migrate';
import { createRedisBus } from './redis-bus';
import { createRequestTracker, type FetchHandler } from './request-tracker';

/**
 * What a service may be handed instead of building it from its config: the standalone server
 * passes one pool, bus, auth and registry to every part; tests pass in-memory buses. What is
 * handed in belongs to the caller and is never closed by the service.
 */
export interface SharedDeps {
  pool?: Pool;
  bus?: Bus;
  auth?: Auth;
  registry?: Registry;
}

/** The bus variables (`busEnv`) as a service's config holds them. */
export interface BusConfig {
  REDIS_URL?: string | undefined;
  REDIS_CLUSTER?: boolean | undefined;
  REDIS_CHANNEL_PREFIX?: string | undefined;
}

/** The database variables (`databaseEnv` and a service's `PG_POOL_MAX`) as a service's config holds them. */
export interface PoolConfig {
  DATABASE_URL: string;
  PG_POOL_MAX: number;
}

/**
 * A service's pool options from its variables: every service sizes its pool with PG_POOL_MAX
 * (the standalone server's one pool too), so the mapping is written once.
 *
 * @example
 *   const pool = shell.pool(poolOptionsFrom(config, 'sync-delta', config.READ_STATEMENT_TIMEOUT_MS));
 */
export function poolOptionsFrom(
  config: PoolConfig,
  applicationName: string,
  statementTimeoutMs?: number,
): PoolOptions & { max: number } {
  return {
    url: config.DATABASE_URL,
    max: config.PG_POOL_MAX,
    applicationName,
    ...(statementTimeoutMs === undefined ? {} : { statementTimeoutMs }),
  };
}

/** Hooks of one service's own work; the shell adds request tracking and resource ownership. */
export interface ServiceHooks {
  /** After the shell's migrations (MIGRATE_ON_START): begin the service's own work. */
  start?(): Promise<void>;
  /** While in-flight requests finish: stop background work (a pruner). */
  drain?(): Promise<void>;
  /** Before the shell ends the pool and bus it created. */
  stop?(): Promise<void>;
}

/**
 * The plumbing every service repeats, in one place: its metrics registry, its pool and bus
 * (handed in, or built from config and then owned: reported in metrics, closed on stop), the
 * in-flight request count that readiness and drain read, and the lifecycle around its own hooks.
 *
 * @example
 *   const shell = createServiceShell('api', deps);
 *   const pool = shell.pool(poolOptionsFrom(config, 'sync-api'));
 *   const app = createApiApp({ pool, registry: shell.registry, isDraining: shell.isDraining, ... });
 *   return { fetch: shell.track(app.fetch), ...shell.lifecycle({ start: ... }) };
 */
export function createServiceShell(
  name: string,
  deps: SharedDeps & { log: Logger },
  options: { drainTimeoutMs?: number } = {},
) {
  const registry = deps.registry ?? createRegistry(name);
  const requests = createRequestTracker();
  const owned: (() => Promise<void>)[] = [];
  const drainTimeoutMs = options.drainTimeoutMs ?? 25_000;

  return {
    registry,
    /** True once drain began: `/readyz` answers 503. */
    isDraining: () => requests.draining,
    /** Requests being handled right now. */
    inFlight: () => requests.inFlight,
    /** Wraps a fetch so each request is counted while it runs: serve this one. */
    track: (fetch: FetchHandler) => requests.wrap(fetch),
    /** The handed-in pool, or a new one (its gauges in the registry, ended on stop). */
    pool(poolOptions: PoolOptions & { max: number }): Pool {
      if (deps.pool) return deps.pool;
      const pool = createPool(poolOptions);
      registerPoolMetrics(registry, pool, poolOptions.max);
      owned.push(() => pool.end());
      return pool;
    },
    /** The handed-in bus, or a Redis bus from the bus variables (closed on stop). */
    bus(config: BusConfig): Bus {
      if (deps.bus) return deps.bus;
      if (!config.REDIS_URL) throw new Error(`${name}: REDIS_URL is required without a bus of its own`);
      const bus = createRedisBus({
        url: config.REDIS_URL,
        cluster: config.REDIS_CLUSTER ?? false,
        log: deps.log,
        ...(config.REDIS_CHANNEL_PREFIX ? { channelPrefix: config.REDIS_CHANNEL_PREFIX } : {}),
      });
      owned.push(() => bus.close());
      return bus;
    },
    /**
     * The service's lifecycle: `start` applies migrations when the config asks
     * (MIGRATE_ON_START), then runs the hook; `drain` turns readiness 503 at once and resolves
     * once in-flight requests are done (at most `drainTimeoutMs`) and the hook's drain is;
     * `stop` runs the hook, then ends what the shell created, last first.
     */
    lifecycle(
      hooks: ServiceHooks,
      migrations?: { DATABASE_URL: string; MIGRATE_ON_START: boolean },
    ): Service {
      return {
        async start() {
          if (migrations?.MIGRATE_ON_START) await migrate(migrations.DATABASE_URL, deps.log);
          await hooks.start?.();
        },
        async drain() {
          const drained = requests.drain(drainTimeoutMs);
          await hooks.drain?.();
          await drained;
        },
        async stop() {
          await hooks.stop?.();
          for (const end of owned.splice(0).reverse()) await end();
        },
      };
    },
  };
}
export type ServiceShell = ReturnType<typeof createServiceShell>;
