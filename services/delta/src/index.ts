/**
 * The delta service: the read path of OpenAgents Sync. Consistent bootstrap snapshots, replay of
 * a scope's log after a cursor, and retention of that log.
 */
export { createDeltaApp, type DeltaAppConfig, type DeltaAppOptions } from './app';
export { type DeltaMetrics, deltaMetricsFor } from './metrics';
export { MAX_HEADS_SCOPES } from './query-params';
export { createDeltaReader, type DeltaReader } from './reader';
