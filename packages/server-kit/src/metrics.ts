import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import packageJson from '../package.json' with { type: 'json' };

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets in seconds, from 0.5 ms to 10 s: fits commit, query and delivery latencies. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * A registry per service instance (never the global one, so tests can run several services in
 * one process). Default process and Node metrics (event-loop lag, heap, GC) carry the `sync_`
 * prefix like everything else; `service` is a default label.
 */
export function createRegistry(
  service: string,
  options: { defaultMetrics?: boolean; build?: BuildInfo } = {},
): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'sync_' });
  const build = options.build ?? buildInfo();
  new Gauge({
    name: 'sync_build_info',
    help: 'Always 1; the labels say which build runs (version, commit). Dashboards mark deploys where they change.',
    labelNames: ['version', 'commit'] as const,
    registers: [registry],
  }).set({ version: build.version, commit: build.commit }, 1);
  return registry;
}

export interface BuildInfo {
  version: string;
  commit: string;
}

/**
 * The running build: `SYNC_BUILD_VERSION` and `SYNC_BUILD_COMMIT`, which the image bakes in at
 * build time (deploy/Dockerfile build args), else the package version and `unknown`. Read here
 * rather than in each main.ts because they describe the artifact, not its configuration.
 */
export function buildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  const clean = (value: string | undefined) => (value?.trim() ? value.trim().slice(0, 64) : undefined);
  return {
    version: clean(env.SYNC_BUILD_VERSION) ?? packageJson.version,
    commit: clean(env.SYNC_BUILD_COMMIT) ?? 'unknown',
  };
}

/**
 * HTTP metrics shared by the Hono services. `route` is the matched route pattern, never a raw path.
 * Get-or-create: in the standalone server the api and delta apps share one registry and one family.
 */
export function createHttpMetrics(registry: Registry) {
  const name = 'sync_http_request_duration_seconds';
  const existing = registry.getSingleMetric(name) as Histogram<'route' | 'method' | 'status'> | undefined;
  return {
    requestDuration:
      existing ??
      new Histogram({
        name,
        help: 'HTTP request duration by route pattern, method and status code.',
        labelNames: ['route', 'method', 'status'] as const,
        buckets: LATENCY_BUCKETS,
        registers: [registry],
      }),
  };
}
export type HttpMetrics = ReturnType<typeof createHttpMetrics>;

/** Gauges of a pg pool, sampled at scrape time. */
export function registerPoolMetrics(
  registry: Registry,
  pool: { totalCount: number; idleCount: number; waitingCount: number },
  max: number,
): void {
  // One pool per process: a second registration (standalone mounts several apps) is a no-op.
  if (registry.getSingleMetric('sync_pg_pool_connections')) return;
  new Gauge({
    name: 'sync_pg_pool_connections',
    help: 'Postgres pool connections by state (total, idle, waiting clients, max).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
      this.set({ state: 'max' }, max);
    },
  });
}
