import type { SyncClient, SyncState } from '@openagents/sync-client';
import { createStore, type StoreApi } from 'zustand/vanilla';

/** A Zustand vanilla store mirroring a sync client's state, and how to stop mirroring. */
export interface ClientStore {
  store: StoreApi<SyncState>;
  /** Starts following the client (syncing the current state first); returns the stop function. */
  attach(): () => void;
}

export interface ClientStoreOptions {
  /**
   * At most one store update (and so one render of the hooks) per this many milliseconds; 0 (the
   * default) updates on every change of the client. A change after a quiet spell goes through at
   * once; changes within the interval after it are merged into one update at its end, carrying
   * the client's latest state. What a stream of tokens costs the page then follows the interval,
   * not the token rate (the Vercel AI SDK's `useChat` throttle does the same).
   */
  throttleMs?: number;
}

/**
 * Feeds a Zustand vanilla store from `client.subscribe`. The client's snapshots are immutable
 * and share structure, so the store holds them as they are (`replace: true`) and selectors can
 * compare slices by identity.
 */
export function createClientStore(client: SyncClient, options: ClientStoreOptions = {}): ClientStore {
  const store = createStore<SyncState>()(() => client.getState());
  const sync = () => {
    if (store.getState() !== client.getState()) store.setState(client.getState(), true);
  };
  const throttleMs = options.throttleMs ?? 0;
  return {
    store,
    attach() {
      // Anything that changed between the first render and this effect is picked up here.
      sync();
      if (!(throttleMs > 0)) return client.subscribe((state) => store.setState(state, true));
      let last = Number.NEGATIVE_INFINITY;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const flush = () => {
        timer = undefined;
        last = Date.now();
        sync();
      };
      const unsubscribe = client.subscribe(() => {
        if (timer !== undefined) return;
        const wait = last + throttleMs - Date.now();
        if (wait <= 0) flush();
        else timer = setTimeout(flush, wait);
      });
      return () => {
        unsubscribe();
        clearTimeout(timer);
      };
    },
  };
}
