import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client';
import packageJson from '../package.json' with { type: 'json' };

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Buckets in seconds, from 0.5 ms to 10 s: fits commit, query and delivery latencies. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

type Options<C> = Omit<C, 'registers'>;

/** Builds metrics registered in one registry; histograms default to LATENCY_BUCKETS. */
export interface MetricFactory {
  counter<L extends string = string>(options: Options<CounterConfiguration<L>>): Counter<L>;
  gauge<L extends string = string>(options: Options<GaugeConfiguration<L>>): Gauge<L>;
  histogram<L extends string = string>(options: Options<HistogramConfiguration<L>>): Histogram<L>;
}

function metricFactory(registry: Registry): MetricFactory {
  const registers = [registry];
  return {
    counter: (options) => new Counter({ ...options, registers }),
    gauge: (options) => new Gauge({ ...options, registers }),
    histogram: (options) => new Histogram({ buckets: LATENCY_BUCKETS, ...options, registers }),
  };
}

/**
 * The one way metrics are declared: a set of metrics scoped to a registry, built the first time
 * a registry asks for it and handed back on every later call. Several apps over one registry (the
 * standalone server mounts api, delta and gateway on one; tests build several apps) therefore
 * share one family per name instead of failing on a duplicate registration, and no set needs a
 * registry of its own. A set may hold plain data besides metrics (e.g. the sources a gauge reads
 * at scrape time).
 *
 * @example
 *   export const queueMetricsFor = defineMetrics((m) => ({
 *     depth: m.gauge({ name: 'sync_queue_depth', help: 'Items waiting.' }),
 *   }));
 *   queueMetricsFor(registry).depth.set(3);
 */
export function defineMetrics<T>(
  build: (m: MetricFactory, registry: Registry) => T,
): (registry: Registry) => T {
  const sets = new WeakMap<Registry, T>();
  return (registry) => {
    let set = sets.get(registry);
    if (set === undefined) {
      set = build(metricFactory(registry), registry);
      sets.set(registry, set);
    }
    return set;
  };
}

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
  metricFactory(registry)
    .gauge({
      name: 'sync_build_info',
      help: 'Always 1; the labels say which build runs (version, commit). Dashboards mark deploys where they change.',
      labelNames: ['version', 'commit'] as const,
    })
    .set({ version: build.version, commit: build.commit }, 1);
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

/** HTTP metrics shared by the Hono services. `route` is the matched route pattern, never a raw path. */
export const createHttpMetrics = defineMetrics((m) => ({
  requestDuration: m.histogram({
    name: 'sync_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
  }),
}));
export type HttpMetrics = ReturnType<typeof createHttpMetrics>;

interface PoolGauge {
  pool?: { totalCount: number; idleCount: number; waitingCount: number };
  max: number;
}

const poolMetricsFor = defineMetrics((m): PoolGauge => {
  const source: PoolGauge = { max: 0 };
  m.gauge({
    name: 'sync_pg_pool_connections',
    help: 'Postgres pool connections by state (total, idle, waiting clients, max).',
    labelNames: ['state'] as const,
    collect() {
      if (!source.pool) return;
      this.set({ state: 'total' }, source.pool.totalCount);
      this.set({ state: 'idle' }, source.pool.idleCount);
      this.set({ state: 'waiting' }, source.pool.waitingCount);
      this.set({ state: 'max' }, source.max);
    },
  });
  return source;
});

/**
 * Gauges of a pg pool, sampled at scrape time. The first pool registered on a registry is the one
 * reported (the pool of the writes where a process has several).
 */
export function registerPoolMetrics(
  registry: Registry,
  pool: { totalCount: number; idleCount: number; waitingCount: number },
  max: number,
): void {
  const source = poolMetricsFor(registry);
  if (source.pool) return;
  source.pool = pool;
  source.max = max;
}
