import {
  type ConnectionStatus,
  createScopeSelector,
  type MutationInput,
  type PendingMutation,
  type ScopeRecords,
  type ScopeStatus,
  type SyncState,
} from '@openagents/sync-client';
import { type ModelName, type ModelRecords, scopeOf, type WriteResult } from '@openagents/sync-protocol';
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
    (s: SyncState) => (id === undefined ? undefined : (s.records[model][id] as ModelRecords[M] | undefined)),
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
 * The records of a model as an array, optionally scoped, filtered and sorted. Re-renders only
 * when the resulting list changes (same records in the same order keep the same array).
 */
export function useRecords<M extends ModelName>(
  model: M,
  options: UseRecordsOptions<M> = {},
): ModelRecords[M][] {
  const { scope, filter, sort } = options;
  const select = useCallback(
    (s: SyncState) => {
      let list = Object.values(s.records[model]) as ModelRecords[M][];
      if (scope !== undefined) list = list.filter((r) => scopeOf(model, r) === scope);
      if (filter) list = list.filter(filter);
      if (sort) list.sort(sort);
      return list;
    },
    [model, scope, filter, sort],
  );
  return useSyncSelector(select, shallow);
}

/** The live connection's status. */
export function useConnectionStatus(): ConnectionStatus {
  return useSyncSelector(selectConnection);
}

/** Writes not yet confirmed by the log, oldest first. */
export function usePendingMutations(): readonly PendingMutation[] {
  return useSyncSelector(selectPending);
}

export interface AgentSync {
  /** The scope's records grouped by model (identity kept while unchanged). */
  data: ScopeRecords;
  status: ScopeStatus;
  lastSyncId: number;
  error: string | undefined;
  mutate: (m: MutationInput) => Promise<WriteResult>;
}

/**
 * Follows a scope while the component is mounted and returns its records.
 *
 * @example
 * const { data, status, mutate } = useAgentSync(`agent:${agentId}`);
 * const messages = Object.values(data.Message);
 */
export function useAgentSync(scope: string): AgentSync {
  const client = useSyncClient();
  useEffect(() => client.subscribeScope(scope), [client, scope]);
  const selectData = useMemo(() => createScopeSelector(scope), [scope]);
  const data = useSyncSelector(selectData);
  const scopeState = useSyncSelector(useCallback((s: SyncState) => s.scopes[scope], [scope]));
  const mutate = useCallback((m: MutationInput) => client.mutate(m), [client]);
  return {
    data,
    status: scopeState?.status ?? 'pending',
    lastSyncId: scopeState?.lastSyncId ?? 0,
    error: scopeState?.error,
    mutate,
  };
}

const selectConnection = (s: SyncState) => s.connection;
const selectPending = (s: SyncState) => s.pending;
