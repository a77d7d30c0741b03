import { createStore, del, get, set, update } from 'idb-keyval';

/**
 * Where the client keeps records, cursors and pending mutations between page loads. Values are
 * plain JSON-like data (structured-clonable).
 */
export interface SyncStorage {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown): Promise<void>;
  del(key: string): Promise<void>;
  /**
   * Reads, changes and writes one key atomically (one IndexedDB transaction), so tabs sharing the
   * storage do not lose each other's changes. Optional: without it, get then set.
   */
  update?(key: string, change: (old: unknown) => unknown): Promise<void>;
}

/** An in-memory SyncStorage: survives a client, not a reload. Handy in tests and on servers. */
export function createMemoryStorage(): SyncStorage & { readonly data: Map<string, unknown> } {
  const data = new Map<string, unknown>();
  return {
    data,
    async get(key) {
      const value = data.get(key);
      return value === undefined ? undefined : structuredClone(value);
    },
    async set(key, value) {
      data.set(key, structuredClone(value));
    },
    async del(key) {
      data.delete(key);
    },
    async update(key, change) {
      const old = data.get(key);
      data.set(key, structuredClone(change(old === undefined ? undefined : structuredClone(old))));
    },
  };
}

/**
 * A SyncStorage in IndexedDB (through idb-keyval), one database per name: use a name per user
 * (e.g. `openagents-sync:<user id>`) so accounts sharing a browser do not see each other's data.
 */
export function createIndexedDbStorage(name = 'openagents-sync'): SyncStorage {
  const store = createStore(name, 'kv');
  return {
    get: (key) => get(key, store),
    set: (key, value) => set(key, value, store),
    del: (key) => del(key, store),
    update: (key, change) => update(key, change, store),
  };
}
