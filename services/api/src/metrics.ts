import {
  Counter,
  createHttpMetrics,
  Gauge,
  Histogram,
  type HttpMetrics,
  LATENCY_BUCKETS,
  type Registry,
} from '@openagents/sync-server-kit';

/** How a mutation ended, the `result` label of `sync_mutations_total`. */
export type MutationResult = 'ok' | 'replayed' | 'client_error' | 'conflict' | 'error';

/**
 * Every metric the write path emits (names in base units, documented in docs/api.md). Metrics
 * already in the registry are reused, so the standalone server can mount this app next to others
 * on one registry, and tests can build several apps over one registry.
 */
export function createApiMetrics(registry: Registry) {
  const http = (
    registry.getSingleMetric('sync_http_request_duration_seconds') === undefined
      ? createHttpMetrics(registry)
      : {
          requestDuration: registry.getSingleMetric('sync_http_request_duration_seconds'),
        }
  ) as HttpMetrics;
  return {
    http,
    mutations: counter(registry, {
      name: 'sync_mutations_total',
      help: 'Mutations by model, action and result (ok, replayed, client_error, conflict, error).',
      labelNames: ['model', 'action', 'result'],
    }),
    commitDuration: histogram(registry, {
      name: 'sync_commit_duration_seconds',
      help: 'Time of the write transaction (records, events, idempotency) from BEGIN to COMMIT.',
    }),
    commitSize: histogram(registry, {
      name: 'sync_commit_mutations',
      help: 'Mutations per write transaction (above 1 for batches and for grouped concurrent writes).',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    }),
    commitQueue: gauge(registry, {
      name: 'sync_commit_queue_length',
      help: 'Creates waiting behind a running transaction of their scope (they commit together next).',
    }),
    publishDuration: histogram(registry, {
      name: 'sync_bus_publish_duration_seconds',
      help: 'Time to publish one scope’s committed events to the bus.',
    }),
    publishFailures: counter(registry, {
      name: 'sync_bus_publish_failures_total',
      help: 'Publishes of committed events that failed (the write still succeeded; the log has them).',
      labelNames: [],
    }),
    idempotentReplays: counter(registry, {
      name: 'sync_idempotent_replays_total',
      help: 'Mutations answered from a stored idempotency result instead of being written again.',
      labelNames: [],
    }),
    rateLimited: counter(registry, {
      name: 'sync_rate_limited_total',
      help: 'Requests rejected with 429 by the per-subject rate limit.',
      labelNames: [],
    }),
  };
}
export type ApiMetrics = ReturnType<typeof createApiMetrics>;

function counter<L extends string>(
  registry: Registry,
  options: { name: string; help: string; labelNames: readonly L[] },
): Counter<L> {
  const existing = registry.getSingleMetric(options.name);
  if (existing) return existing as Counter<L>;
  return new Counter({ ...options, registers: [registry] });
}

function gauge(registry: Registry, options: { name: string; help: string }): Gauge {
  const existing = registry.getSingleMetric(options.name);
  if (existing) return existing as Gauge;
  return new Gauge({ ...options, registers: [registry] });
}

function histogram(
  registry: Registry,
  options: { name: string; help: string; buckets?: number[] },
): Histogram {
  const existing = registry.getSingleMetric(options.name);
  if (existing) return existing as Histogram;
  return new Histogram({ buckets: LATENCY_BUCKETS, ...options, registers: [registry] });
}
