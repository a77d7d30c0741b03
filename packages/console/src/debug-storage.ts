import type { SyncStorage } from '@openagents/sync-client';

/**
 * Wraps the client's storage to record, per key, the `lastSyncId` of the last value written
 * (the client stores each scope's records and cursor together). The browser test reads it from
 * `window.__SYNC_DEBUG__.persisted` to reload only once the cursor it wants to resume from is on
 * disk, instead of sleeping for the client's persistence throttle.
 */
export function instrumentStorage(storage: SyncStorage, persisted: Record<string, number>): SyncStorage {
  return {
    get: (key) => storage.get(key),
    del: async (key) => {
      await storage.del(key);
      delete persisted[key];
    },
    set: async (key, value) => {
      await storage.set(key, value);
      const cursor = (value as { lastSyncId?: unknown } | null)?.lastSyncId;
      if (typeof cursor === 'number') persisted[key] = cursor;
    },
  };
}
