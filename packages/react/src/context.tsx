import type { SyncClient, SyncState } from '@openagents/sync-client';
import { createContext, type ReactNode, useContext, useEffect, useState } from 'react';
import type { StoreApi } from 'zustand/vanilla';
import { createClientStore } from './client-store';

interface SyncContextValue {
  client: SyncClient;
  store: StoreApi<SyncState>;
}

const SyncContext = createContext<SyncContextValue | null>(null);

/**
 * Makes a sync client available to the hooks below it.
 *
 * @example
 * const client = createSyncClient({ url, getToken });
 * root.render(<SyncProvider client={client}><App /></SyncProvider>);
 */
export function SyncProvider({ client, children }: { client: SyncClient; children?: ReactNode }) {
  const [binding, setBinding] = useState(() => ({ client, ...createClientStore(client) }));
  if (binding.client !== client) setBinding({ client, ...createClientStore(client) });
  useEffect(() => binding.attach(), [binding]);
  return (
    <SyncContext.Provider value={{ client: binding.client, store: binding.store }}>
      {children}
    </SyncContext.Provider>
  );
}

function useSyncContext(): SyncContextValue {
  const value = useContext(SyncContext);
  if (!value) throw new Error('sync hooks must be used inside <SyncProvider client={...}>');
  return value;
}

/** The client given to the nearest `<SyncProvider>`. */
export function useSyncClient(): SyncClient {
  return useSyncContext().client;
}

/** The Zustand store mirroring the client (for `useStore` with your own selectors). */
export function useSyncStore(): StoreApi<SyncState> {
  return useSyncContext().store;
}
