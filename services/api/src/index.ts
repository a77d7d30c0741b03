/**
 * The mutation workers (write path): validated REST writes committed with their sync events in
 * one transaction, then published to the bus.
 */
export { type ApiAppConfig, type ApiAppDeps, createApiApp } from './app';
export {
  type CommitDeps,
  type CommitMember,
  commitGroup,
  commitMutations,
  type MutationOutcome,
} from './commit';
export { type ApiConfig, ApiConfigSchema, DEFAULT_BODY_LIMIT_BYTES, loadApiConfig } from './config';
export { type ApiMetrics, createApiMetrics } from './metrics';
export { type ApiService, type ApiServiceDeps, createApiService } from './service';
