import {
  type Counter,
  createHttpMetrics,
  defineMetrics,
  type Histogram,
  type HttpMetrics,
  LATENCY_BUCKETS,
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

/**
 * The delta metrics of a registry, created on first use (see `defineMetrics`): the HTTP app and
 * the pruner both ask for them, and tests build several apps over one registry. The HTTP
 * histogram is shared with the other services of the process (standalone mode).
 */
export const deltaMetricsFor = defineMetrics(
  (m, registry): DeltaMetrics => ({
    http: createHttpMetrics(registry),
    deltaRequests: m.counter({
      name: 'sync_delta_requests_total',
      help: 'GET /sync/delta requests by result (ok, reset, client_error, error).',
      labelNames: ['result'] as const,
    }),
    deltaDuration: m.histogram({
      name: 'sync_delta_duration_seconds',
      help: 'Time to answer GET /sync/delta, by result.',
      labelNames: ['result'] as const,
    }),
    deltaEventsReturned: m.histogram({
      name: 'sync_delta_events_returned',
      help: 'Events per successful delta page.',
      buckets: COUNT_BUCKETS,
    }),
    bootstrapRequests: m.counter({
      name: 'sync_bootstrap_requests_total',
      help: 'GET /sync/bootstrap requests by result (ok, client_error, error).',
      labelNames: ['result'] as const,
    }),
    bootstrapDuration: m.histogram({
      name: 'sync_bootstrap_duration_seconds',
      help: 'Time to read and serialize a bootstrap page, by result.',
      labelNames: ['result'] as const,
    }),
    bootstrapRecords: m.histogram({
      name: 'sync_bootstrap_records',
      help: 'Records (all models) per successful bootstrap page.',
      buckets: COUNT_BUCKETS,
    }),
    headsRequests: m.counter({
      name: 'sync_heads_requests_total',
      help: 'GET /sync/heads requests by result (ok, client_error, error).',
      labelNames: ['result'] as const,
    }),
    reads: m.counter({
      name: 'sync_delta_reads_total',
      help: 'Delta pages and snapshots handed out, by kind (delta, bootstrap) and source: postgres (read for this request), cache or in_flight (shared with another request that accepted it through Cache-Control: max-age).',
      labelNames: ['kind', 'source'] as const,
    }),
    eventsPruned: m.counter({
      name: 'sync_events_pruned_total',
      help: 'Log events deleted by retention.',
    }),
    idempotencyKeysPruned: m.counter({
      name: 'sync_idempotency_keys_pruned_total',
      help: 'Idempotency keys deleted after their retention.',
    }),
    pruneDuration: m.histogram({
      name: 'sync_prune_duration_seconds',
      help: 'Duration of one pruning run (events and idempotency keys) that held the prune lock.',
      buckets: [...LATENCY_BUCKETS, 30, 60, 300],
    }),
    pruneRuns: m.counter({
      name: 'sync_prune_runs_total',
      help: 'Pruning runs by result: ok, skipped (another replica held the lock), error.',
      labelNames: ['result'] as const,
    }),
  }),
);
