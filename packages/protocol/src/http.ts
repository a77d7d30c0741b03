import * as z from 'zod/mini';
import { ModelsSnapshot, SyncEvent } from './events';
import { MAX_TEXT_LENGTH, ModelName } from './models';

/** `POST /api/<path>` and `PATCH` answer: the record, its scope, and the event id it produced. */
export const WriteResult = z.object({
  data: z.record(z.string(), z.unknown()),
  scope: z.string(),
  syncId: z.int().check(z.positive()),
});
export type WriteResult = z.infer<typeof WriteResult>;

/** The longest idempotency key accepted (header or mutationId). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
export const IdempotencyKey = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(MAX_IDEMPOTENCY_KEY_LENGTH),
    z.regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
  );

/** What a batch entry does: the event actions, plus `append` (contract v1.1 section 4). */
export const MutationAction = z.enum(['insert', 'update', 'delete', 'append']);
export type MutationAction = z.infer<typeof MutationAction>;

/**
 * The batch schema for a set of model names: the built-in one below, or a deployment's own
 * (a custom registry's `ModelName`). `data` is validated per model and action by the server.
 */
export function mutationBatchSchema<N extends string>(model: z.ZodMiniType<N>) {
  const entry = z.strictObject({
    mutationId: z.optional(IdempotencyKey),
    model,
    action: MutationAction,
    id: z.optional(z.uuid()),
    data: z.optional(z.record(z.string(), z.unknown())),
  });
  const batch = z.strictObject({
    mutations: z.array(entry).check(z.minLength(1), z.maxLength(MAX_BATCH_MUTATIONS)),
  });
  return { entry, batch };
}

export const MAX_BATCH_MUTATIONS = 500;
const builtIn = mutationBatchSchema(ModelName);
/** One entry of `POST /api/mutations`. */
export const MutationEntry = builtIn.entry;
export type MutationEntry = z.infer<typeof MutationEntry>;
export const MutationBatch = builtIn.batch;
export type MutationBatch = z.infer<typeof MutationBatch>;

export const MutationBatchResult = z.object({ results: z.array(WriteResult) });
export type MutationBatchResult = z.infer<typeof MutationBatchResult>;

/**
 * `GET /sync/bootstrap?scope=S[&cursor=C]`: one page of the scope's records. `nextCursor` is
 * present on every page but the last; fetch it with `&cursor=<nextCursor>`. Every page of one
 * bootstrap carries the same `lastSyncId`, the one to resume the log from (contract v1.1).
 */
export const BootstrapResponse = z.object({
  scope: z.string(),
  models: ModelsSnapshot,
  lastSyncId: z.int().check(z.nonnegative()),
  nextCursor: z.optional(z.string()),
});
export type BootstrapResponse = z.infer<typeof BootstrapResponse>;

/** `GET /sync/delta?scope=S&lastSyncId=N[&limit=L]` */
export const DeltaResponse = z.object({
  scope: z.string(),
  events: z.array(SyncEvent),
  latestSyncId: z.int().check(z.nonnegative()),
  hasMore: z.boolean(),
});
export type DeltaResponse = z.infer<typeof DeltaResponse>;

export const DEFAULT_DELTA_LIMIT = 1000;
export const MAX_DELTA_LIMIT = 10_000;
/** The most scopes one `GET /sync/heads` may ask about (the delta service refuses more). */
export const MAX_HEADS_SCOPES = 1000;

/**
 * `POST /api/<path>/<id>/append` (and a batch entry's `data` with `action: "append"`): `text` is
 * added to `field` at `offset`, the field's current length in UTF-16 code units (a JavaScript
 * string's `length`). Answered 200 `{ data: { id, length }, scope, syncId }`.
 */
export const AppendBody = z.strictObject({
  field: z.string(),
  offset: z.int().check(z.gte(0), z.lte(2 ** 31 - 1)),
  text: z.string().check(z.maxLength(MAX_TEXT_LENGTH)),
});
export type AppendBody = z.infer<typeof AppendBody>;

/** The fields of each model that can be appended to (declared in models.ts). */
export { APPENDABLE_FIELDS } from './models';
