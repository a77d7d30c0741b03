import type { SyncClient, SyncState } from '@openagents/sync-client';
import { createStore, type StoreApi } from 'zustand/vanilla';

/** A Zustand vanilla store mirroring a sync client's state, and how to stop mirroring. */
export interface ClientStore {
  store: StoreApi<SyncState>;
  /** Starts following the client (syncing the current state first); returns the stop function. */
  attach(): () => void;
}

/**
 * Feeds a Zustand vanilla store from `client.subscribe`. The client's snapshots are immutable
 * and share structure, so the store holds them as they are (`replace: true`) and selectors can
 * compare slices by identity.
 */
export function createClientStore(client: SyncClient): ClientStore {
  const store = createStore<SyncState>()(() => client.getState());
  return {
    store,
    attach() {
      // Anything that changed between the first render and this effect is picked up here.
      if (store.getState() !== client.getState()) store.setState(client.getState(), true);
      return client.subscribe((state) => store.setState(state, true));
    },
  };
}
