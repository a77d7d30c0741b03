import * as z from 'zod/mini';
import { ModelName } from './models';
import { Scope } from './scope';

/** What a write does to a record; each committed write appends an event with the same action. */
export const EventAction = z.enum(['insert', 'update', 'delete']);
export type EventAction = z.infer<typeof EventAction>;

/**
 * The action of a log event: the write actions plus `append` (v1.1), which carries only a piece of
 * text added to the end of one field of the record.
 */
export const SyncEventAction = z.enum(['insert', 'update', 'delete', 'append']);
export type SyncEventAction = z.infer<typeof SyncEventAction>;

/**
 * `data` of an `append` event (contract section 5): `text` was added to `field` at `offset`, the
 * field's length before the piece in UTF-16 code units (a JavaScript string's `length`).
 */
export const AppendEventData = z.object({
  field: z.string().check(z.minLength(1)),
  offset: z.int().check(z.gte(0)),
  text: z.string(),
  updated_at: z.string(),
});
export type AppendEventData = z.infer<typeof AppendEventData>;

/**
 * One entry of a scope's log (contract section 5). Ids within a scope are 1, 2, 3, ... with no
 * gaps, in commit order. `data` is the full record on insert, the changed fields (with
 * updated_at) on update, null on delete, and `AppendEventData` on append.
 */
export const SyncEvent = z.object({
  id: z.int().check(z.positive()),
  scope: Scope,
  model: ModelName,
  model_id: z.uuid(),
  action: SyncEventAction,
  data: z.nullable(z.record(z.string(), z.unknown())),
  mutationId: z.nullable(z.string()),
  created_at: z.string(),
});
export type SyncEvent = z.infer<typeof SyncEvent>;

/** Snapshot models as served by bootstrap: every model name, each an array of records. */
export const ModelsSnapshot = z.record(ModelName, z.array(z.record(z.string(), z.unknown())));
export type ModelsSnapshot = Record<ModelName, Record<string, unknown>[]>;
