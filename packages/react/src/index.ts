/**
 * @openagents/sync-react — React hooks over @openagents/sync-client, through a Zustand store, so
 * a component re-renders only when the slice it selects changes.
 */
export { shallow } from 'zustand/shallow';
export { type ClientStore, createClientStore } from './client-store';
export { SyncProvider, useSyncClient, useSyncStore } from './context';
export {
  type AgentSync,
  type ScopeSnapshot,
  type UseRecordsOptions,
  useAgentSync,
  useConnectionStatus,
  usePendingMutations,
  useRecord,
  useRecords,
  useScopeReady,
} from './hooks';
export { useSyncSelector } from './use-sync-selector';
