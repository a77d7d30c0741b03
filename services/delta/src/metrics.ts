import {
  Counter,
  createHttpMetrics,
  Histogram,
  type HttpMetrics,
  LATENCY_BUCKETS,
  type Registry,
} from '@openagents/sync-server-kit';

/** How a read request ended: its metric label. Bounded, never the scope. */
export type ReadResult = 'ok' | 'reset' | 'client_error' | 'error';

/** Buckets for counts (events per page, records per snapshot), 0 to 100k. */
const COUNT_BUCKETS = [0, 1, 10, 50, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000];

/** Every metric the delta service exports, all prefixed `sync_`. */
export interface DeltaMetrics {
  http: HttpMetrics;
  deltaRequests: Counter<'result'>;
  deltaDuration: Histogram<'result'>;
  deltaEventsReturned: Histogram;
  bootstrapRequests: Counter<'result'>;
  bootstrapDuration: Histogram<'result'>;
  bootstrapRecords: Histogram;
  headsRequests: Counter<'result'>;
  reads: Counter<'kind' | 'source'>;
  eventsPruned: Counter;
  idempotencyKeysPruned: Counter;
  pruneDuration: Histogram;
  pruneRuns: Counter<'result'>;
}

const cache = new WeakMap<Registry, DeltaMetrics>();

/**
 * The delta metrics of a registry, created on first use. The HTTP app and the pruner both ask
 * for them (and tests build several apps over one registry), so asking twice hands back the same
 * objects rather than failing on duplicate names. The HTTP histogram is shared with the other
 * services of the process (standalone mode) through server-kit's get-or-create.
 */
export function deltaMetricsFor(registry: Registry): DeltaMetrics {
  const known = cache.get(registry);
  if (known) return known;
  const registers = [registry];
  const metrics: DeltaMetrics = {
    http: createHttpMetrics(registry),
    deltaRequests: new Counter({
      name: 'sync_delta_requests_total',
      help: 'GET /sync/delta requests by result (ok, reset, client_error, error).',
      labelNames: ['result'] as const,
      registers,
    }),
    deltaDuration: new Histogram({
      name: 'sync_delta_duration_seconds',
      help: 'Time to answer GET /sync/delta, by result.',
      labelNames: ['result'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    deltaEventsReturned: new Histogram({
      name: 'sync_delta_events_returned',
      help: 'Events per successful delta page.',
      buckets: COUNT_BUCKETS,
      registers,
    }),
    bootstrapRequests: new Counter({
      name: 'sync_bootstrap_requests_total',
      help: 'GET /sync/bootstrap requests by result (ok, client_error, error).',
      labelNames: ['result'] as const,
      registers,
    }),
    bootstrapDuration: new Histogram({
      name: 'sync_bootstrap_duration_seconds',
      help: 'Time to read and serialize a bootstrap page, by result.',
      labelNames: ['result'] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    bootstrapRecords: new Histogram({
      name: 'sync_bootstrap_records',
      help: 'Records (all models) per successful bootstrap page.',
      buckets: COUNT_BUCKETS,
      registers,
    }),
    headsRequests: new Counter({
      name: 'sync_heads_requests_total',
      help: 'GET /sync/heads requests by result (ok, client_error, error).',
      labelNames: ['result'] as const,
      registers,
    }),
    reads: new Counter({
      name: 'sync_delta_reads_total',
      help: 'Delta pages and snapshots handed out, by kind (delta, bootstrap) and source: postgres (read for this request), cache or in_flight (shared with another request that accepted it through Cache-Control: max-age).',
      labelNames: ['kind', 'source'] as const,
      registers,
    }),
    eventsPruned: new Counter({
      name: 'sync_events_pruned_total',
      help: 'Log events deleted by retention.',
      registers,
    }),
    idempotencyKeysPruned: new Counter({
      name: 'sync_idempotency_keys_pruned_total',
      help: 'Idempotency keys deleted after their retention.',
      registers,
    }),
    pruneDuration: new Histogram({
      name: 'sync_prune_duration_seconds',
      help: 'Duration of one pruning run (events and idempotency keys) that held the prune lock.',
      buckets: [...LATENCY_BUCKETS, 30, 60, 300],
      registers,
    }),
    pruneRuns: new Counter({
      name: 'sync_prune_runs_total',
      help: 'Pruning runs by result: ok, skipped (another replica held the lock), error.',
      labelNames: ['result'] as const,
      registers,
    }),
  };
  cache.set(registry, metrics);
  return metrics;
}
