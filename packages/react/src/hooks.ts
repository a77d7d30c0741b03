import {
  type ConnectionStatus,
  createScopedMutate,
  type PendingMutation,
  type ScopedMutate,
  type ScopeRecords,
  type ScopeState,
  type ScopeStatus,
  type SyncState,
} from '@openagents/sync-client';
import type { ModelName, ModelRecords } from '@openagents/sync-protocol';
import { useCallback, useEffect, useMemo } from 'react';
import { shallow } from 'zustand/shallow';
import { useSyncClient } from './context';
import { useSyncSelector } from './use-sync-selector';

/** One record by id (server state with pending writes applied), or undefined. */
export function useRecord<M extends ModelName>(
  model: M,
  id: string | undefined,
): ModelRecords[M] | undefined {
  const select = useCallback(
    (s: SyncState) => (id === undefined ? undefined : s.records.get(model, id)),
    [model, id],
  );
  return useSyncSelector(select);
}

export interface UseRecordsOptions<M extends ModelName> {
  /** Keep only the records of this scope (e.g. `agent:<id>` for its messages). */
  scope?: string;
  filter?: (record: ModelRecords[M]) => boolean;
  sort?: (a: ModelRecords[M], b: ModelRecords[M]) => number;
}

/**
 * The records of one model in one scope, in commit order (`created_sync_id`, then id; optimistic
 * inserts last). The list is maintained by the client, so this costs the same whatever the
 * scope's size, and it is the same array until a record in it changes — a component re-renders
 * only then.
 *
 * The older form `useRecords(model, { scope?, filter?, sort? })` still works; with `filter` or
 * `sort` it walks the list on every change of it (and without `scope`, every record of the model).
 *
 * @example
 * const messages = useRecords(`agent:${agentId}`, 'Message');
 */
export function useRecords<M extends ModelName>(scope: string, model: M): readonly ModelRecords[M][];
export function useRecords<M extends ModelName>(
  model: M,
  options?: UseRecordsOptions<M>,
): readonly ModelRecords[M][];
export function useRecords<M extends ModelName>(
  first: string,
  second?: M | UseRecordsOptions<M>,
): readonly ModelRecords[M][] {
  const scoped = typeof second === 'string';
  const model = (scoped ? second : first) as M;
  const options = (scoped ? {} : (second ?? {})) as UseRecordsOptions<M>;
  const scope = scoped ? first : options.scope;
  const { filter, sort } = options;
  const select = useMemo(() => {
    if (scope !== undefined && !filter && !sort) return (s: SyncState) => s.records.list(scope, model);
    let source: readonly ModelRecords[M][] | undefined;
    let derived: ModelRecords[M][] = [];
    return (s: SyncState) => {
      const list = scope !== undefined ? s.records.list(scope, model) : undefined;
      // The scoped list keeps its identity while unchanged: derive again only when it moved.
      if (list !== undefined && list === source) return derived;
      let out = list !== undefined ? [...list] : s.records.all(model);
      if (filter) out = out.filter(filter);
      if (sort) out.sort(sort);
      source = list;
      derived = out;
      return out;
    };
  }, [scope, model, filter, sort]);
  return useSyncSelector(select, scope !== undefined && !filter && !sort ? Object.is : shallow);
}

/** The live connection's status. */
export function useConnectionStatus(): ConnectionStatus {
  return useSyncSelector(selectConnection);
}

/** Writes not yet confirmed by the log, oldest first. */
export function usePendingMutations(): readonly PendingMutation[] {
  return useSyncSelector(selectPending);
}

/**
 * Whether a scope's records are current (its status is `live`: bootstrapped or resumed on the
 * open connection). Records restored from storage show before that, possibly stale.
 */
export function useScopeReady(scope: string): boolean {
  return useSyncSelector(useCallback((s: SyncState) => s.scopes[scope]?.status === 'live', [scope]));
}

/** What `useAgentSync` hands a selector: one scope's state and records. */
export interface ScopeSnapshot {
  readonly scope: string;
  /** The scope's records, each model a list in commit order (identity kept while unchanged). */
  readonly data: ScopeRecords;
  readonly status: ScopeStatus;
  readonly lastSyncId: number;
  readonly error: string | undefined;
  /** `status === 'live'`. */
  readonly ready: boolean;
}

export interface AgentSync<S extends string = string> extends ScopeSnapshot {
  /** Writes bound to this scope, typed per model (see `ScopedMutate`). */
  mutate: ScopedMutate<S>;
}

/**
 * Follows a scope while the component is mounted and returns its records and state, or — with a
 * selector — just the part the component needs: it re-renders only when that part changes (by
 * `equalityFn`, default `Object.is`). The work per change is constant: the scope's lists are
 * maintained by the client, and the selector runs only when this scope's state or records moved.
 *
 * @example
 * const { data, status, mutate } = useAgentSync(`agent:${agentId}` as const);
 * data.Message; // in commit order
 * await mutate.insert('Message', { role: 'user', content: 'hi' }); // agent_id filled in
 * const status = useAgentSync(scope, (s) => s.status); // no re-render per streamed token
 */
export function useAgentSync<S extends string>(scope: S): AgentSync<S>;
export function useAgentSync<S extends string, T>(
  scope: S,
  selector: (scope: ScopeSnapshot) => T,
  equalityFn?: (a: T, b: T) => boolean,
): T;
export function useAgentSync<S extends string, T>(
  scope: S,
  selector?: (scope: ScopeSnapshot) => T,
  equalityFn?: (a: T, b: T) => boolean,
): AgentSync<S> | T {
  const client = useSyncClient();
  useEffect(() => client.subscribeScope(scope), [client, scope]);
  const selectSnapshot = useMemo(() => createSnapshotSelector(scope), [scope]);
  const select = useMemo(() => {
    if (!selector) return selectSnapshot;
    let last: ScopeSnapshot | undefined;
    let value: T;
    return (s: SyncState) => {
      const snapshot = selectSnapshot(s);
      if (snapshot !== last) {
        last = snapshot;
        value = selector(snapshot);
      }
      return value;
    };
  }, [selectSnapshot, selector]);
  const selected = useSyncSelector<ScopeSnapshot | T>(
    select,
    (equalityFn as ((a: ScopeSnapshot | T, b: ScopeSnapshot | T) => boolean) | undefined) ?? Object.is,
  );
  const mutate = useMemo(() => createScopedMutate(client, scope), [client, scope]);
  const withMutate = useMemo(
    () => (selector ? undefined : { ...(selected as ScopeSnapshot), mutate }),
    [selector, selected, mutate],
  );
  return selector ? (selected as T) : withMutate!;
}

/** One scope's snapshot, rebuilt only when its state entry or its records object changed. */
function createSnapshotSelector(scope: string): (s: SyncState) => ScopeSnapshot {
  let state: ScopeState | undefined;
  let data: ScopeRecords | undefined;
  let snapshot: ScopeSnapshot | undefined;
  return (s) => {
    const nextState = s.scopes[scope];
    const nextData = s.records.scope(scope);
    if (snapshot && nextState === state && nextData === data) return snapshot;
    state = nextState;
    data = nextData;
    snapshot = {
      scope,
      data: nextData,
      status: nextState?.status ?? 'pending',
      lastSyncId: nextState?.lastSyncId ?? 0,
      error: nextState?.error,
      ready: nextState?.status === 'live',
    };
    return snapshot;
  };
}

const selectConnection = (s: SyncState) => s.connection;
const selectPending = (s: SyncState) => s.pending;
