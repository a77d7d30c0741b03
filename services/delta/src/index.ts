/**
 * The delta service: the read path of OpenAgents Sync. Consistent bootstrap snapshots, replay of
 * a scope's log after a cursor, and retention of that log.
 */
export { createDeltaApp, type DeltaAppConfig, type DeltaAppOptions } from './app';
export { type DeltaConfig, DeltaConfigSchema, loadDeltaConfig } from './config';
export { type DeltaMetrics, deltaMetricsFor, type ReadResult } from './metrics';
export { createPruner, type PruneRun, type Pruner, type PrunerOptions } from './pruner';
export { MAX_HEADS_SCOPES } from './query-params';
export { createReadGate, type ReadGate } from './read-gate';
export { createDeltaReader } from './reader';
export { createDeltaService, type DeltaService, type DeltaServiceDeps } from './service';
