import { MODEL_REGISTRY, type ModelRegistry } from '@openagents/sync-protocol';

/**
 * What a scope string selects in the domain tables. Only `<prefix>:<uuid>` scopes whose prefix
 * owns records in the model registry (`org:`, `agent:` for the built-in models) own records; any
 * other scope (another kind, or an id that is not a canonical uuid) is a valid log that simply
 * has no rows, so its snapshot is empty.
 *
 * Ids must be lowercase canonical uuids: that is how Postgres prints a uuid, and so how the write
 * path derives a record's scope (`scopeOf` over the stored row). `org:ABC…` is a different log from
 * `org:abc…`; matching its rows case-insensitively would pair one scope's rows with another
 * scope's lastSyncId and break the snapshot's promise.
 */
export type ScopeTarget = { kind: 'records'; prefix: string; id: string } | { kind: 'none' };

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function scopeTarget(scope: string, models: ModelRegistry = MODEL_REGISTRY): ScopeTarget {
  const colon = scope.indexOf(':');
  if (colon < 0) return { kind: 'none' };
  const prefix = scope.slice(0, colon);
  const id = scope.slice(colon + 1);
  if (!CANONICAL_UUID.test(id)) return { kind: 'none' };
  if (!models.prefixes.includes(prefix)) return { kind: 'none' };
  return { kind: 'records', prefix, id };
}
