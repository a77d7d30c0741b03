/** Server plumbing shared by the api, delta and gateway services. */
export {
  type Auth,
  type AuthOptions,
  bearerToken,
  createAuth,
  JWKS_ALGORITHMS,
  type Principal,
  type TokenUse,
} from './auth';
export { type Bus, type BusHandler, type BusMessage, type BusStatus, HandlerTable } from './bus';
export {
  type AuthEnv,
  authEnv,
  authOptionsFromEnv,
  bool,
  busEnv,
  ConfigError,
  corsEnv,
  databaseEnv,
  jwtKeyMap,
  jwtSecret,
  jwtSecretList,
  loadEnv,
  logLevel,
  nonNegativeInt,
  originList,
  poolSize,
  port,
  positiveInt,
  postgresUrl,
  processEnv,
  redisCluster,
  redisUrl,
  webOrigin,
} from './config';
export { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, corsFor } from './cors';
export { createPool, inTransaction, type Pool, type PoolClient, type PoolOptions, pingDatabase } from './db';
export type { BootstrapOptions, DeltaSource, ReadOptions } from './delta-source';
export { AppError, isUnavailableError, toAppError } from './errors';
export { composeServices, handleSignals, type Service, type SignalSource } from './lifecycle';
export { createLogger, type Logger } from './logger';
export { createMemoryBus } from './memory-bus';
export {
  Counter,
  createHttpMetrics,
  createRegistry,
  defineMetrics,
  Gauge,
  Histogram,
  type HttpMetrics,
  LATENCY_BUCKETS,
  type MetricFactory,
  Registry,
  registerPoolMetrics,
} from './metrics';
export { MIGRATIONS_DIR, migrate } from './migrate';
export { type MintTokenOptions, mintToken, parseTtl, type Ttl } from './mint-token';
export {
  columnType,
  createTableSql,
  currentSyncCommit,
  indexesOf,
  modelMigrationSql,
  syncCommitOf,
  syncCommitSql,
} from './model-sql';
export { createOpsRoutes, type DependencyCheck, type ReadinessCheck } from './ops';
export { sharePool } from './pool-share';
export { createRateLimiter, type RateDecision, type RateLimiter, type RateLimitOptions } from './rate-limit';
export { createRedisBus, type RedisBusOptions } from './redis-bus';
export { createRedisClusterBus, type RedisClusterBusOptions } from './redis-cluster-bus';
export { parseRedisTarget, type RedisTarget, RedisUrlError } from './redis-target';
export { createRequestTracker, type RequestTracker } from './request-tracker';
export { type HttpServing, type ProcessIo, runService } from './run-service';
export { schemaDifferences } from './schema-check';
export { httpListener } from './serve-http';
export {
  type BusConfig,
  createServiceShell,
  type PoolConfig,
  poolOptionsFrom,
  type ServiceHooks,
  type ServiceShell,
  type SharedDeps,
} from './service-shell';
export { serviceTokenSource } from './service-token';
export { createSingleFlight, type SingleFlight } from './single-flight';
export { createSlots, type Slots } from './slots';
export { staleSweeper } from './stale-sweeper';
export {
  appendEvents,
  type NewEvent,
  pruneEvents,
  type Queryable,
  readEvents,
  readEventsWithin,
  readHead,
  readHeads,
  type ScopeHead,
} from './sync-log';
export { runTokenCommand, TOKEN_USAGE, type TokenCommandResult } from './token-command';
