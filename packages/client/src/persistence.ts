import { MODEL_NAMES, type ModelName, type ModelsSnapshot } from '@openagents/sync-protocol';
import type { Replica, ReplicaChanges } from './replica';
import type { SyncStorage } from './storage';
import type { PendingMutation, SyncErrorEntry } from './types';

const KEY_SCOPES = 'v1:scopes';
/** Where clients before per-instance keys kept their pending mutations; adopted on load. */
const KEY_PENDING_SHARED = 'v1:pending';
/** The instances that have pending mutations stored, each under its own key. */
const KEY_PENDING_OWNERS = 'v1:pending-owners';
const scopeKey = (scope: string) => `v1:scope:${scope}`;
const pendingKey = (instance: string) => `v1:pending:${instance}`;
const lockName = (instance: string) => `openagents-sync:pending:${instance}`;

/**
 * The part of the Web Locks API (`navigator.locks`) the client uses to tell a live tab from a
 * closed one. Each client holds a lock named after itself while it runs.
 */
export interface LockManagerLike {
  request<T>(name: string, callback: (lock: unknown) => Promise<T> | T): Promise<T>;
  request<T>(
    name: string,
    options: { ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<T> | T,
  ): Promise<T>;
}

interface StoredScope {
  lastSyncId: number;
  models: Partial<ModelsSnapshot>;
}

/**
 * Mirrors the replica into a SyncStorage. Each scope is one key holding its records and cursor
 * together, so a reload never pairs a cursor with records from another moment (which would skip
 * or double-apply events). Scope writes are throttled — a busy scope is rewritten at most once
 * per `throttleMs`; pending mutations are written at once, since losing one loses a user's write.
 *
 * Tabs of one user share the storage, so pending mutations are kept per client instance: one
 * tab's write must never overwrite another's unsent ones. Each instance holds a Web Lock named
 * after itself while it runs; on load a client adopts the pending mutations of every instance
 * whose lock is free (its tab was closed or crashed before they were confirmed), writes them under
 * its own key, then deletes the old one. Without Web Locks it adopts every other instance's: a
 * live tab's writes then go out twice under the same idempotency key, which the server answers
 * once.
 */
export class Persister {
  #storage: SyncStorage;
  #replica: Replica;
  #throttleMs: number;
  #report: (error: Omit<SyncErrorEntry, 'at'>) => void;
  #instance: string;
  #locks: LockManagerLike | undefined;
  #releaseLock: (() => void) | undefined;
  /** Whether this instance is in the owners list (it is added with its first stored write). */
  #registered = false;
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
    instance: { id: string; locks: LockManagerLike | undefined },
  ) {
    this.#storage = storage;
    this.#replica = replica;
    this.#throttleMs = throttleMs;
    this.#report = report;
    this.#instance = instance.id;
    this.#locks = instance.locks;
  }

  /**
   * Loads what a previous session left: scopes (records + cursor) and the pending mutations of
   * instances that are gone (this tab's previous life among them).
   */
  async hydrate(): Promise<PendingMutation[]> {
    try {
      await this.#holdOwnLock();
      const scopes = await this.#storage.get(KEY_SCOPES);
      for (const scope of Array.isArray(scopes) ? scopes : []) {
        if (typeof scope !== 'string') continue;
        const stored = (await this.#storage.get(scopeKey(scope))) as StoredScope | undefined;
        if (!stored || typeof stored.lastSyncId !== 'number' || typeof stored.models !== 'object') continue;
        this.#replica.restoreScope(scope, stored.lastSyncId, stored.models);
        this.#known.add(scope);
      }
      return await this.#adoptOrphans();
    } catch (error) {
      this.#report({ kind: 'storage', code: 'hydrate_failed', message: String(error) });
      return [];
    }
  }

  /** Takes this instance's lock and keeps it until `close()`: other tabs see it as alive. */
  async #holdOwnLock(): Promise<void> {
    const locks = this.#locks;
    if (!locks) return;
    const released = new Promise<void>((resolve) => {
      this.#releaseLock = resolve;
    });
    try {
      await new Promise<void>((granted, failed) => {
        locks
          .request(lockName(this.#instance), () => {
            granted();
            return released;
          })
          .catch(failed);
      });
    } catch (error) {
      // Web Locks refused (e.g. an opaque origin): carry on as if there were none.
      this.#locks = undefined;
      this.#report({ kind: 'storage', code: 'locks_unavailable', message: String(error) });
    }
  }

  /**
   * Adopts the pending mutations of every instance that is gone, and of the shared key older
   * versions used. Each is first written under this instance's key and only then deleted from
   * the old one, so a crash in between leaves a copy, never none (a copy is resent under the same
   * idempotency key, which the server answers once).
   */
  async #adoptOrphans(): Promise<PendingMutation[]> {
    const adopted: PendingMutation[] = [];
    const take = async (key: string) => {
      const stored = await this.#storage.get(key);
      const list = Array.isArray(stored) ? (stored as unknown[]).filter(isPendingMutation) : [];
      const known = new Set(this.#replica.store.pending.map((p) => p.mutationId));
      const fresh = list.filter((p) => !known.has(p.mutationId));
      for (const p of fresh) this.#replica.restorePending({ ...p, status: 'sending' });
      adopted.push(...fresh);
      if (fresh.length > 0) await this.#writePending();
      await this.#storage.del(key);
    };
    await take(KEY_PENDING_SHARED);
    const owners = await this.#storage.get(KEY_PENDING_OWNERS);
    for (const owner of Array.isArray(owners) ? owners : []) {
      if (typeof owner !== 'string' || owner === this.#instance) continue;
      const gone = this.#locks
        ? // Free lock: its tab is gone. Adopt while holding it, so two new tabs never both adopt.
          await this.#locks.request(lockName(owner), { ifAvailable: true }, async (lock) => {
            if (lock === null) return false;
            await take(pendingKey(owner));
            return true;
          })
        : (await take(pendingKey(owner)), true);
      if (gone) await this.#updateOwners((list) => list.filter((o) => o !== owner));
    }
    return adopted;
  }

  async #writePending(): Promise<void> {
    const pending = [...this.#replica.store.pending];
    await this.#storage.set(pendingKey(this.#instance), pending);
    if (pending.length > 0 && !this.#registered) {
      await this.#updateOwners((list) => (list.includes(this.#instance) ? list : [...list, this.#instance]));
      this.#registered = true;
    }
  }

  async #updateOwners(change: (owners: string[]) => string[]): Promise<void> {
    const apply = (old: unknown) =>
      change(Array.isArray(old) ? old.filter((o): o is string => typeof o === 'string') : []);
    if (this.#storage.update) await this.#storage.update(KEY_PENDING_OWNERS, apply);
    else await this.#storage.set(KEY_PENDING_OWNERS, apply(await this.#storage.get(KEY_PENDING_OWNERS)));
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
        await this.#writePending();
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

  /**
   * Writes what is dirty, forgets this instance's pending key when nothing is pending, and only
   * then lets go of the lock: until the last write is down no other tab may adopt.
   */
  async close(): Promise<void> {
    this.dispose();
    await this.flush(true);
    try {
      if (this.#replica.store.pending.length === 0) {
        await this.#storage.del(pendingKey(this.#instance));
        if (this.#registered) await this.#updateOwners((list) => list.filter((o) => o !== this.#instance));
      }
    } catch (error) {
      this.#report({ kind: 'storage', code: 'write_failed', message: String(error) });
    } finally {
      this.#releaseLock?.();
    }
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
