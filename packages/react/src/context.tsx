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
 * Makes a sync client available to the hooks below it. `throttleMs` caps how often the hooks see
 * a change (see `ClientStoreOptions`): `throttleMs={100}` renders a 30 tokens/s stream ten times a
 * second instead of once per event; every hook still sees the client's latest state, at most
 * `throttleMs` late. Default 0: every change.
 *
 * @example
 * const client = createSyncClient({ url, getToken });
 * root.render(<SyncProvider client={client}><App /></SyncProvider>);
 */
export function SyncProvider({
  client,
  throttleMs = 0,
  children,
}: {
  client: SyncClient;
  throttleMs?: number;
  children?: ReactNode;
}) {
  const bind = () => ({ client, throttleMs, ...createClientStore(client, { throttleMs }) });
  const [binding, setBinding] = useState(bind);
  if (binding.client !== client || binding.throttleMs !== throttleMs) setBinding(bind());
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
