import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
export function createRegistry(service: string, options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'sync_' });
  return registry;
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
