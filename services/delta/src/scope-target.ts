/**
 * What a scope string selects in the domain tables. Only `org:<uuid>` and `agent:<uuid>` own
 * records; any other scope (another kind, or an id that is not a canonical uuid) is a valid log
 * that simply has no rows, so its snapshot is empty.
 *
 * Ids must be lowercase canonical uuids: that is how Postgres prints a uuid, and so how the write
 * path derives a record's scope (`scopeOf` over the stored row). `org:ABC…` is a different log from
 * `org:abc…`; matching its rows case-insensitively would pair one scope's rows with another
 * scope's lastSyncId and break the snapshot's promise.
 */
export type ScopeTarget =
  | { kind: 'org'; orgId: string }
  | { kind: 'agent'; agentId: string }
  | { kind: 'none' };

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function scopeTarget(scope: string): ScopeTarget {
  const colon = scope.indexOf(':');
  if (colon < 0) return { kind: 'none' };
  const kind = scope.slice(0, colon);
  const id = scope.slice(colon + 1);
  if (!CANONICAL_UUID.test(id)) return { kind: 'none' };
  if (kind === 'org') return { kind: 'org', orgId: id };
  if (kind === 'agent') return { kind: 'agent', agentId: id };
  return { kind: 'none' };
}
