import { MODEL_NAMES, type ModelName, type ModelsSnapshot } from '@openagents/sync-protocol';
import type { Replica, ReplicaChanges } from './replica';
import type { SyncStorage } from './storage';
import type { PendingMutation, SyncErrorEntry } from './types';

const KEY_SCOPES = 'v1:scopes';
const KEY_PENDING = 'v1:pending';
const scopeKey = (scope: string) => `v1:scope:${scope}`;

interface StoredScope {
  lastSyncId: number;
  models: Partial<ModelsSnapshot>;
}

/**
 * Mirrors the replica into a SyncStorage. Each scope is one key holding its records and cursor
 * together, so a reload never pairs a cursor with records from another moment (which would skip
 * or double-apply events). Scope writes are throttled — a busy scope is rewritten at most once
 * per `throttleMs`; pending mutations are written at once, since losing one loses a user's write.
 */
export class Persister {
  #storage: SyncStorage;
  #replica: Replica;
  #throttleMs: number;
  #report: (error: Omit<SyncErrorEntry, 'at'>) => void;
  #dirtyScopes = new Set<string>();
  #droppedScopes = new Set<string>();
  #pendingDirty = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> = Promise.resolve();
  #known = new Set<string>();

  constructor(
    storage: SyncStorage,
    replica: Replica,
    throttleMs: number,
    report: (error: Omit<SyncErrorEntry, 'at'>) => void,
  ) {
    this.#storage = storage;
    this.#replica = replica;
    this.#throttleMs = throttleMs;
    this.#report = report;
  }

  /** Loads what a previous session left: scopes (records + cursor) and pending mutations. */
  async hydrate(): Promise<PendingMutation[]> {
    try {
      const scopes = await this.#storage.get(KEY_SCOPES);
      for (const scope of Array.isArray(scopes) ? scopes : []) {
        if (typeof scope !== 'string') continue;
        const stored = (await this.#storage.get(scopeKey(scope))) as StoredScope | undefined;
        if (!stored || typeof stored.lastSyncId !== 'number' || typeof stored.models !== 'object') continue;
        this.#replica.restoreScope(scope, stored.lastSyncId, stored.models);
        this.#known.add(scope);
      }
      const pending = await this.#storage.get(KEY_PENDING);
      const list = Array.isArray(pending) ? (pending as PendingMutation[]).filter(isPendingMutation) : [];
      for (const p of list) this.#replica.restorePending({ ...p, status: 'sending' });
      return list;
    } catch (error) {
      this.#report({ kind: 'storage', code: 'hydrate_failed', message: String(error) });
      return [];
    }
  }

  /** Notes what changed; writes follow (pending at once, scopes throttled). */
  note(changes: ReplicaChanges): void {
    for (const s of changes.scopes) {
      this.#dirtyScopes.add(s);
      this.#droppedScopes.delete(s);
    }
    for (const s of changes.dropped) {
      this.#droppedScopes.add(s);
      this.#dirtyScopes.delete(s);
    }
    if (changes.pending) {
      this.#pendingDirty = true;
      void this.flush(false);
    }
    if ((this.#dirtyScopes.size > 0 || this.#droppedScopes.size > 0) && !this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        void this.flush(true);
      }, this.#throttleMs);
    }
  }

  /** Writes what is dirty now (scopes only when `includeScopes`); resolves when written. */
  flush(includeScopes = true): Promise<void> {
    this.#writing = this.#writing.then(() => this.#write(includeScopes));
    return this.#writing;
  }

  async #write(includeScopes: boolean): Promise<void> {
    try {
      if (this.#pendingDirty) {
        this.#pendingDirty = false;
        await this.#storage.set(KEY_PENDING, [...this.#replica.store.pending]);
      }
      if (!includeScopes) return;
      const dirty = [...this.#dirtyScopes];
      const dropped = [...this.#droppedScopes];
      this.#dirtyScopes.clear();
      this.#droppedScopes.clear();
      if (dirty.length === 0 && dropped.length === 0) return;
      for (const scope of dirty) {
        const value: StoredScope = {
          lastSyncId: this.#replica.cursor(scope),
          models: this.#replica.store.snapshotScope(scope),
        };
        await this.#storage.set(scopeKey(scope), value);
        this.#known.add(scope);
      }
      for (const scope of dropped) this.#known.delete(scope);
      await this.#storage.set(KEY_SCOPES, [...this.#known]);
      for (const scope of dropped) await this.#storage.del(scopeKey(scope));
    } catch (error) {
      this.#report({ kind: 'storage', code: 'write_failed', message: String(error) });
    }
  }

  dispose(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function isPendingMutation(p: unknown): p is PendingMutation {
  const m = p as PendingMutation | null;
  return (
    !!m &&
    typeof m.mutationId === 'string' &&
    typeof m.id === 'string' &&
    (MODEL_NAMES as readonly string[]).includes(m.model as ModelName) &&
    (m.action === 'insert' || m.action === 'update' || m.action === 'delete')
  );
}
