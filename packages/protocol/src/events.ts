import * as z from 'zod/mini';
import { ModelName } from './models';
import { Scope } from './scope';

export const EventAction = z.enum(['insert', 'update', 'delete']);
export type EventAction = z.infer<typeof EventAction>;

/**
 * One entry of a scope's log (contract section 5). Ids within a scope are 1, 2, 3, ... with no
 * gaps, in commit order. `data` is the full record on insert, the changed fields (with
 * updated_at) on update, and null on delete.
 */
export const SyncEvent = z.object({
  id: z.int().check(z.positive()),
  scope: Scope,
  model: ModelName,
  model_id: z.uuid(),
  action: EventAction,
  data: z.nullable(z.record(z.string(), z.unknown())),
  mutationId: z.nullable(z.string()),
  created_at: z.string(),
});
export type SyncEvent = z.infer<typeof SyncEvent>;

/** Snapshot models as served by bootstrap: every model name, each an array of records. */
export const ModelsSnapshot = z.record(ModelName, z.array(z.record(z.string(), z.unknown())));
export type ModelsSnapshot = Record<ModelName, Record<string, unknown>[]>;
