/**
 * @openagents/sync-client — a framework-free client for OpenAgents Sync: follows many scopes
 * over one WebSocket, keeps records current in an incremental store (per-scope ordered lists), applies writes optimistically
 * and confirms them through the log.
 */
export { BACKOFF_DEFAULTS, type BackoffOptions, backoff, isRetryable } from './backoff';
export type { NetworkMonitor, WebSocketConstructor, WebSocketLike } from './connection';
export { MutationError, SyncClosedError } from './errors';
export type { LockManagerLike } from './persistence';
export { createScopeSelector } from './scope-records';
export {
  createScopedMutate,
  type ScopedInsertInput,
  type ScopedMutate,
  type ScopeField,
  type ScopeModel,
} from './scoped-mutate';
export { createIndexedDbStorage, createMemoryStorage, type SyncStorage } from './storage';
export {
  type AppendableField,
  type AppendableModel,
  createStreamWriter,
  STREAM_WRITER_DEFAULTS,
  type StreamResult,
  type StreamWriter,
  type StreamWriterHooks,
  type StreamWriterOptions,
} from './stream-writer';
export {
  type ClientStreamOptions,
  createSyncClient,
  type MutationInput,
  type SyncClient,
  type SyncClientOptions,
  type SyncListener,
} from './sync-client';
export { tokenExpiry } from './token-source';
export type {
  ConnectionStatus,
  MutationAction,
  PendingMutation,
  RecordChanges,
  RecordsView,
  ScopeRecords,
  ScopeState,
  ScopeStatus,
  SyncErrorEntry,
  SyncState,
} from './types';
