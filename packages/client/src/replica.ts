import {
  type BootstrapFrame,
  type ClientFrame,
  type ModelsSnapshot,
  SCOPE_PATTERN,
  type ServerFrame,
  type SyncEvent,
  unreachable,
  type WriteResult,
} from '@openagents/sync-protocol';
import { RecordStore } from './record-store';
import type { PendingMutation, ScopeState, ScopeStatus, SyncErrorEntry } from './types';

/** What the replica needs from its surroundings: a way to send frames and to report problems. */
export interface ReplicaHooks {
  send(frame: ClientFrame): void;
  report(error: Omit<SyncErrorEntry, 'at'>): void;
  now?: () => number;
}

interface ScopeEntry {
  status: ScopeStatus;
  lastSyncId: number;
  error?: string;
  /** How many `follow()` calls hold this scope; 0 for a scope restored from storage only. */
  refs: number;
  /** When we last re-subscribed because of a gap (undefined: not resyncing). */
  resyncAt: number | undefined;
  /** Subscribes the server failed (`internal`) in a row; reset once one is answered. */
  subscribeFailures?: number;
  /** The event whose append piece last found a gap (undefined: none). */
  appendGapAt?: number | undefined;
  /**
   * Pages of a bootstrap still coming (`more: true`), held aside until the last one arrives so
   * the store never shows a half-bootstrapped scope. Every page of one bootstrap has the same
   * lastSyncId; a page with another one starts a new bootstrap.
   */
  pages?: { lastSyncId: number; models: Record<string, Record<string, unknown>[]> };
}

/** Scopes whose records or cursor changed, for persistence. */
export interface ReplicaChanges {
  scopes: Set<string>;
  dropped: Set<string>;
  pending: boolean;
}

/** A gap that is not answered within this window may be re-requested. */
const RESYNC_RETRY_MS = 5_000;

/**
 * The client's state machine for scopes and cursors — the part that turns server frames into
 * records. It knows nothing about sockets or HTTP: the connection feeds it frames and tells it
 * when the socket opens or drops; it answers with frames to send.
 *
 * Ordering rules (the contract's guarantee, enforced again on this side):
 * - a `bootstrap` (with or without `reset`) replaces the scope's server records and sets the
 *   cursor to its `lastSyncId`;
 * - `sync` events are applied strictly in id order: an id at or below the cursor is a duplicate
 *   and is skipped; the id right after the cursor is applied; anything further is a gap, and the
 *   scope is re-subscribed from its cursor (the events in between will come as catch-up).
 * - `append` pieces are applied by offset: a piece the text already covers is skipped, a piece
 *   starting beyond the text's end is a gap like a missing id (not applied, cursor kept, resumed).
 * Pending mutations live in the same store, above the server layer, so they survive every
 * bootstrap and reset: the visible records are always "server state + pending, in order".
 */
export class Replica {
  readonly store = new RecordStore();
  #hooks: ReplicaHooks;
  #now: () => number;
  #scopes = new Map<string, ScopeEntry>();
  #scopesView: Readonly<Record<string, ScopeState>> = {};
  #scopesDirty = false;
  #connected = false;
  #changes: ReplicaChanges = { scopes: new Set(), dropped: new Set(), pending: false };

  constructor(hooks: ReplicaHooks) {
    this.#hooks = hooks;
    this.#now = hooks.now ?? Date.now;
  }

  /** Followed (and restored) scopes as an immutable map; same object until something changes. */
  get scopes(): Readonly<Record<string, ScopeState>> {
    if (this.#scopesDirty) {
      const view: Record<string, ScopeState> = {};
      for (const [scope, e] of this.#scopes) {
        const prev = this.#scopesView[scope];
        view[scope] =
          prev && prev.status === e.status && prev.lastSyncId === e.lastSyncId && prev.error === e.error
            ? prev
            : {
                status: e.status,
                lastSyncId: e.lastSyncId,
                ...(e.error !== undefined ? { error: e.error } : {}),
              };
      }
      this.#scopesView = view;
      this.#scopesDirty = false;
    }
    return this.#scopesView;
  }

  /** The scopes that `follow()` currently holds. */
  followedScopes(): string[] {
    return [...this.#scopes].filter(([, e]) => e.refs > 0).map(([s]) => s);
  }

  /** Whether `follow()` holds the scope (its events will arrive). */
  isFollowed(scope: string): boolean {
    return this.#followed(scope) !== undefined;
  }

  cursor(scope: string): number {
    return this.#scopes.get(scope)?.lastSyncId ?? 0;
  }

  /** Takes (and resets) the set of changes since the last call. */
  takeChanges(): ReplicaChanges {
    const out = this.#changes;
    this.#changes = { scopes: new Set(), dropped: new Set(), pending: false };
    return out;
  }

  /** Adds a scope restored from storage: records and cursor, not yet followed. */
  restoreScope(scope: string, lastSyncId: number, models: Partial<ModelsSnapshot>): void {
    const entry = this.#scopes.get(scope);
    if (entry) {
      // Followed before storage was read: fine as long as the server has not answered yet
      // (the client connects only after hydrating), so resume from the stored cursor.
      if (entry.lastSyncId !== 0 || entry.status === 'live') return;
      entry.lastSyncId = lastSyncId;
    } else {
      this.#scopes.set(scope, { status: 'pending', lastSyncId, refs: 0, resyncAt: undefined });
    }
    this.store.replaceScope(scope, models);
    this.#scopesDirty = true;
  }

  /** Re-applies a pending mutation restored from storage. */
  restorePending(mutation: PendingMutation): void {
    if (this.store.pending.some((p) => p.mutationId === mutation.mutationId)) return;
    this.store.addPending(mutation);
  }

  /** Follows a scope (ref-counted). Subscribes at once when connected. */
  follow(scope: string): void {
    let entry = this.#scopes.get(scope);
    if (!entry) {
      entry = { status: 'pending', lastSyncId: 0, refs: 0, resyncAt: undefined };
      this.#scopes.set(scope, entry);
      this.#scopesDirty = true;
    }
    entry.refs++;
    if (entry.refs === 1 && this.#connected) this.#subscribe(scope, entry);
  }

  /** Releases one hold on a scope; the last one unsubscribes and forgets its records. */
  unfollow(scope: string): void {
    const entry = this.#scopes.get(scope);
    if (!entry || entry.refs === 0) return;
    entry.refs--;
    if (entry.refs > 0) return;
    if (this.#connected) this.#hooks.send({ type: 'unsubscribe', scope });
    this.#scopes.delete(scope);
    this.store.dropScope(scope);
    this.#scopesDirty = true;
    this.#changes.dropped.add(scope);
    this.#changes.scopes.delete(scope);
  }

  /** The socket is open: (re)subscribe every followed scope from its cursor. */
  connected(): void {
    this.#connected = true;
    for (const [scope, entry] of this.#scopes) if (entry.refs > 0) this.#subscribe(scope, entry);
  }

  /** The socket dropped: scopes wait for the next connection, cursors and records stay. */
  disconnected(): void {
    this.#connected = false;
    for (const entry of this.#scopes.values()) {
      entry.resyncAt = undefined;
      entry.pages = undefined;
      if (entry.status === 'live' || entry.status === 'bootstrapping') this.#setStatus(entry, 'pending');
    }
  }

  /**
   * Subscribes again every followed scope that has had no answer on this connection — after a
   * `rate_limited` error, which names no frame, so any of them may have been the one dropped.
   */
  resubscribeUnanswered(): void {
    if (!this.#connected) return;
    for (const [scope, entry] of this.#scopes) {
      if (entry.refs > 0 && (entry.status === 'pending' || entry.status === 'bootstrapping')) {
        this.#subscribe(scope, entry);
      }
    }
  }

  /** Subscribes the server failed (`internal`) in a row for a scope: the retry's backoff step. */
  subscribeFailures(scope: string): number {
    return this.#scopes.get(scope)?.subscribeFailures ?? 0;
  }

  /**
   * Subscribes again to a followed scope whose subscribe the server failed (an `internal` error
   * naming it: the gateway gave up on it, e.g. its delta service stayed unavailable). Nothing
   * when the scope was answered since, is no longer followed, or the socket is down (the next
   * connection subscribes it anyway).
   */
  resubscribeFailed(scope: string): void {
    const entry = this.#followed(scope);
    if (!this.#connected || !entry || entry.status !== 'error') return;
    this.#subscribe(scope, entry);
  }

  /** Applies one server frame. */
  receive(frame: ServerFrame): void {
    switch (frame.type) {
      case 'bootstrap': {
        const entry = this.#followed(frame.scope);
        if (!entry) return;
        const models = this.#collectPage(entry, frame);
        if (frame.more) return;
        this.store.replaceScope(frame.scope, models);
        entry.lastSyncId = frame.lastSyncId;
        entry.resyncAt = undefined;
        entry.error = undefined;
        entry.subscribeFailures = 0;
        this.#setStatus(entry, 'live');
        this.#scopesDirty = true;
        this.#changes.scopes.add(frame.scope);
        this.#confirmUpTo(frame.scope, entry.lastSyncId);
        return;
      }
      case 'sync': {
        const entry = this.#followed(frame.scope);
        if (!entry) return;
        this.#applyEvents(frame.scope, entry, frame.events);
        return;
      }
      case 'subscribed': {
        const entry = this.#followed(frame.scope);
        if (!entry) return;
        entry.resyncAt = undefined;
        entry.subscribeFailures = 0;
        if (entry.status !== 'error') this.#setStatus(entry, 'live');
        return;
      }
      case 'error': {
        const failed = frame.scope && frame.code === 'internal' ? this.#followed(frame.scope) : undefined;
        // Counted before the report, whose handler picks the retry's backoff step from it.
        if (failed) failed.subscribeFailures = (failed.subscribeFailures ?? 0) + 1;
        this.#hooks.report({
          kind: frame.scope ? 'scope' : 'connection',
          code: frame.code,
          message: frame.message,
          ...(frame.scope ? { scope: frame.scope } : {}),
        });
        const entry = frame.scope ? this.#followed(frame.scope) : undefined;
        if (entry && frame.code !== 'rate_limited') {
          entry.error = `${frame.code}: ${frame.message}`;
          this.#setStatus(entry, 'error');
        }
        return;
      }
      case 'pong':
      case 'authed':
        return;
      default:
        unreachable(frame);
    }
  }

  /**
   * The server committed a pending mutation as event `syncId` of `scope`. If the cursor already
   * passed it (or nobody follows that scope, so no event will come), the mutation is done;
   * otherwise it stays applied until that event arrives — removing it earlier would make the
   * record flicker back to its old value for the time the event is in flight.
   */
  mutationCommitted(mutationId: string, result: WriteResult): void {
    const entry = this.#followed(result.scope);
    if (!entry || entry.lastSyncId >= result.syncId) {
      if (this.store.removePending(mutationId)) this.#changes.pending = true;
      return;
    }
    if (
      this.store.updatePending(mutationId, { status: 'sent', scope: result.scope, syncId: result.syncId })
    ) {
      this.#changes.pending = true;
    }
  }

  /**
   * Adds a bootstrap page to the ones held for the scope and returns all of them (pages are
   * disjoint: concatenation is their union). A single-page bootstrap is returned as it came.
   */
  #collectPage(entry: ScopeEntry, frame: BootstrapFrame): BootstrapFrame['models'] {
    const held = entry.pages?.lastSyncId === frame.lastSyncId ? entry.pages : undefined;
    entry.pages = undefined;
    if (!held && !frame.more) return frame.models;
    const models = held?.models ?? {};
    for (const [model, records] of Object.entries(frame.models)) {
      const list = models[model] ?? [];
      for (const record of records) list.push(record);
      models[model] = list;
    }
    if (frame.more) entry.pages = { lastSyncId: frame.lastSyncId, models };
    return models;
  }

  #applyEvents(scope: string, entry: ScopeEntry, events: readonly SyncEvent[]): void {
    const ordered = [...events].sort((a, b) => a.id - b.id);
    let applied = false;
    for (const event of ordered) {
      if (event.id <= entry.lastSyncId) continue; // duplicate
      if (event.id !== entry.lastSyncId + 1 || event.scope !== scope) {
        this.#resync(scope, entry);
        break;
      }
      if (this.store.applyEvent(event) === 'gap') {
        // An append piece beyond the text we hold: a piece is missing, so this event is not
        // applied and the cursor stays before it; the scope resumes from there. If the replayed
        // event still does not fit, our copy of the record is wrong (not the stream), and only a
        // fresh snapshot can fix it: the scope is bootstrapped again.
        if (entry.appendGapAt === event.id) {
          entry.appendGapAt = undefined;
          entry.lastSyncId = 0;
          entry.resyncAt = undefined;
        } else {
          entry.appendGapAt = event.id;
        }
        this.#resync(scope, entry);
        break;
      }
      entry.lastSyncId = event.id;
      applied = true;
      if (event.mutationId && this.store.removePending(event.mutationId)) this.#changes.pending = true;
    }
    if (entry.status !== 'error' && (applied || entry.resyncAt === undefined)) this.#setStatus(entry, 'live');
    if (applied) {
      this.#scopesDirty = true;
      this.#changes.scopes.add(scope);
      this.#confirmUpTo(scope, entry.lastSyncId);
    }
  }

  /** A gap: ask again from the cursor; events in between arrive as catch-up. */
  #resync(scope: string, entry: ScopeEntry): void {
    if (!this.#connected) return;
    const now = this.#now();
    if (entry.resyncAt !== undefined && now - entry.resyncAt < RESYNC_RETRY_MS) return;
    entry.resyncAt = now;
    this.#hooks.send({ type: 'unsubscribe', scope });
    this.#subscribe(scope, entry);
  }

  #subscribe(scope: string, entry: ScopeEntry): void {
    entry.pages = undefined; // a new subscribe answers with a new bootstrap, if any
    if (!SCOPE_PATTERN.test(scope)) {
      // The server would answer with a bad_request that names no scope; say it here instead.
      entry.error = 'bad_request: scope must look like "org:<id>" or "agent:<id>"';
      this.#setStatus(entry, 'error');
      return;
    }
    this.#hooks.send(
      entry.lastSyncId > 0
        ? { type: 'subscribe', scope, lastSyncId: entry.lastSyncId }
        : { type: 'subscribe', scope },
    );
    if (entry.status !== 'live') {
      entry.error = undefined;
      this.#setStatus(entry, entry.lastSyncId > 0 ? 'pending' : 'bootstrapping');
    }
  }

  #confirmUpTo(scope: string, lastSyncId: number): void {
    for (const p of this.store.pending) {
      if (p.status === 'sent' && p.scope === scope && (p.syncId ?? 0) <= lastSyncId) {
        this.store.removePending(p.mutationId);
        this.#changes.pending = true;
      }
    }
  }

  #followed(scope: string): ScopeEntry | undefined {
    const entry = this.#scopes.get(scope);
    return entry && entry.refs > 0 ? entry : undefined;
  }

  #setStatus(entry: ScopeEntry, status: ScopeStatus): void {
    if (entry.status === status) return;
    entry.status = status;
    this.#scopesDirty = true;
  }
}
