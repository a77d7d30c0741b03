/**
 * Wire types of OpenAgents Sync: models, sync events, WebSocket frames, HTTP bodies, error and
 * close codes. Servers and clients both import these; nothing else defines these shapes.
 */

import { en } from 'zod/locales';
import * as z from 'zod/mini';

// The schemas are built with zod/mini, which keeps the browser client small (about 10 KiB of
// zod gzipped instead of 90). Mini ships without error messages; load the English ones unless the
// application configured a locale of its own (full zod loads them the same way on import).
if (!z.config().localeError) z.config(en());

export { type AppendOutcome, applyAppend } from './append';
export { BACKOFF_DEFAULTS, type BackoffOptions, backoff } from './backoff';
export type { HttpErrorCode, WsErrorCode } from './errors';
export { CLOSE_CODES, ErrorBody, HTTP_ERROR_STATUS, WS_ERROR_CODES } from './errors';
export { AppendEventData, EventAction, ModelsSnapshot, SyncEvent, SyncEventAction } from './events';
export { fastServerFrame, isAppendEventData } from './fast-frame';
export {
  AuthedFrame,
  AuthFrame,
  BootstrapFrame,
  ClientFrame,
  ErrorFrame,
  MAX_AUTH_TOKEN_LENGTH,
  MAX_PING_T_LENGTH,
  PingFrame,
  PingT,
  PongFrame,
  ServerFrame,
  SubscribedFrame,
  SubscribeFrame,
  SyncFrame,
  UnsubscribeFrame,
} from './frames';
export {
  APPENDABLE_FIELDS,
  AppendBody,
  BootstrapResponse,
  DEFAULT_DELTA_LIMIT,
  DeltaResponse,
  IdempotencyKey,
  MAX_BATCH_MUTATIONS,
  MAX_DELTA_LIMIT,
  MAX_HEADS_SCOPES,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  MutationAction,
  MutationBatch,
  MutationBatchResult,
  MutationEntry,
  mutationBatchSchema,
  WriteResult,
} from './http';
export type { AnyRecord, AppendField, CreateInput, ModelRecords, UpdateInput } from './models';
export {
  Agent,
  AgentStatus,
  CodeChange,
  CodeChangeStatus,
  createSchemas,
  MAX_TEXT_LENGTH,
  Message,
  MessageRole,
  MODEL_NAMES,
  MODEL_PATHS,
  MODEL_REGISTRY,
  MODELS,
  ModelName,
  modelForPath,
  Payment,
  PaymentStatus,
  ReasoningStep,
  recordSchemas,
  SCOPE_KEYS,
  scopeOf,
  ToolCall,
  ToolCallStatus,
  updateSchemas,
} from './models';
export type {
  AnyField,
  AppendFieldOf,
  BaseRecord,
  Field,
  FieldKind,
  IndexDef,
  InsertInputOf,
  InsertOf,
  Json,
  JsonValue,
  ModelDef,
  ModelRegistry,
  RecordOf,
  ResolvedField,
  ScopeRule,
  UpdateOf,
} from './registry';
export { defineModel, defineRegistry, field, jsonProblem, MAX_JSON_DEPTH, textProblem } from './registry';
export { canonicalScope, canonicalScopePattern, SCOPE_PATTERN, Scope, scopeAllowed } from './scope';
export { APPEND_STREAM_CONTENT_TYPE, APPEND_STREAM_SEGMENT, StreamAck, StreamDone } from './stream';
export { unreachable } from './unreachable';
