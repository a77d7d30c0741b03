import { createHttpMetrics, defineMetrics } from '@openagents/sync-server-kit';

/** How a mutation ended, the `result` label of `sync_mutations_total`. */
export type MutationResult = 'ok' | 'replayed' | 'client_error' | 'conflict' | 'error';

/**
 * Every metric the write path emits (names in base units, documented in docs/api.md), once per
 * registry (see `defineMetrics`): the standalone server mounts this app next to others on one
 * registry, and tests build several apps over one.
 */
export const createApiMetrics = defineMetrics((m, registry) => ({
  http: createHttpMetrics(registry),
  mutations: m.counter({
    name: 'sync_mutations_total',
    help: 'Mutations by model, action and result (ok, replayed, client_error, conflict, error).',
    labelNames: ['model', 'action', 'result'] as const,
  }),
  commitDuration: m.histogram({
    name: 'sync_commit_duration_seconds',
    help: 'Time of the write transaction (records, events, idempotency) from BEGIN to COMMIT.',
  }),
  commitSize: m.histogram({
    name: 'sync_commit_mutations',
    help: 'Mutations per write transaction (above 1 for batches and for grouped concurrent writes).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
  }),
  commitQueue: m.gauge({
    name: 'sync_commit_queue_length',
    help: 'Creates waiting behind a running transaction of their scope (they commit together next).',
  }),
  publishDuration: m.histogram({
    name: 'sync_bus_publish_duration_seconds',
    help: 'Time to publish one commit’s events to the bus (one message per scope, issued together).',
  }),
  publishFailures: m.counter({
    name: 'sync_bus_publish_failures_total',
    help: 'Publishes of committed events that failed (the write still succeeded; the log has them).',
  }),
  idempotentReplays: m.counter({
    name: 'sync_idempotent_replays_total',
    help: 'Mutations answered from a stored idempotency result instead of being written again.',
  }),
  rateLimited: m.counter({
    name: 'sync_rate_limited_total',
    help: 'Requests rejected with 429 by the per-subject rate limit.',
  }),
}));
export type ApiMetrics = ReturnType<typeof createApiMetrics>;
