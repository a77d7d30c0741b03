import {
  type AnyRecord,
  MODEL_NAMES,
  type ModelName,
  type ModelsSnapshot,
  SCOPE_KEYS,
  type SyncEvent,
  scopeOf,
  unreachable,
} from '@openagents/sync-protocol';
import type { PendingMutation, RecordsByModel } from './types';

type Row = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function emptyRecords(): RecordsByModel {
  const out = {} as Record<ModelName, Record<string, AnyRecord>>;
  for (const m of MODEL_NAMES) out[m] = {};
  return out as RecordsByModel;
}

/** Copies a model map; a for-in loop is about twice as fast as spread on these large dictionaries. */
function copyMap(map: Record<string, Row>): Record<string, Row> {
  const out: Record<string, Row> = {};
  for (const id in map) out[id] = map[id]!;
  return out;
}

function shallowEqual(a: Row, b: Row): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.is(a[k], b[k]) || !(k in b)) return false;
  return true;
}

/**
 * Server records per model, plus the optimistic layer of pending mutations on top.
 *
 * The server layer is private and mutable; the visible layer (`records`) is rebuilt only where
 * something changed: each change marks `(model, id)` dirty, and `commit()` copies just the
 * dirty model maps and recomputes just the dirty ids. A record whose visible value did not
 * change keeps its object identity, and so does every untouched model map — which is what lets
 * a React selector on one record skip re-rendering when another record moves.
 */
export class RecordStore {
  #server = new Map<ModelName, Map<string, Row>>(MODEL_NAMES.map((m) => [m, new Map()]));
  #pending: PendingMutation[] = [];
  #visible: RecordsByModel = emptyRecords();
  #dirty = new Map<ModelName, Set<string>>();

  /** The visible records as of the last `commit()`. */
  get records(): RecordsByModel {
    return this.#visible;
  }

  get pending(): readonly PendingMutation[] {
    return this.#pending;
  }

  /** Server-side record (without pending mutations), or undefined. */
  serverRecord(model: ModelName, id: string): Row | undefined {
    return this.#server.get(model)?.get(id);
  }

  /** Applies one log event to the server layer. */
  applyEvent(event: SyncEvent): void {
    const rows = this.#server.get(event.model)!;
    const id = event.model_id;
    switch (event.action) {
      case 'insert':
        if (event.data) rows.set(id, { ...event.data, id });
        break;
      case 'update': {
        const prev = rows.get(id);
        // An update for a record we never saw cannot be rendered faithfully (it carries only the
        // changed fields); under the log's ordering this does not happen, so it is dropped.
        if (prev && event.data) rows.set(id, { ...prev, ...event.data, id });
        break;
      }
      case 'delete':
        rows.delete(id);
        break;
      default:
        unreachable(event.action);
    }
    this.#touch(event.model, id);
  }

  /** Replaces every server record of `scope` with `models` (a bootstrap, or a reset). */
  replaceScope(scope: string, models: Partial<Record<string, readonly Row[]>>): void {
    this.dropScope(scope);
    for (const m of MODEL_NAMES) {
      const list = models[m];
      if (!list) continue;
      const rows = this.#server.get(m)!;
      for (const row of list) {
        const id = row.id;
        // Only well-formed records of this very scope: a row without a uuid id (say `__proto__`)
        // or belonging elsewhere would corrupt the maps or outlive the next reset of its scope.
        if (typeof id !== 'string' || !UUID.test(id) || scopeOf(m, row) !== scope) continue;
        rows.set(id, row);
        this.#touch(m, id);
      }
    }
  }

  /** Removes every server record that belongs to `scope`. */
  dropScope(scope: string): void {
    const prefix = scope.slice(0, scope.indexOf(':'));
    for (const m of MODEL_NAMES) {
      if (SCOPE_KEYS[m].prefix !== prefix) continue;
      const rows = this.#server.get(m)!;
      for (const [id, row] of rows) {
        if (scopeOf(m, row) === scope) {
          rows.delete(id);
          this.#touch(m, id);
        }
      }
    }
  }

  /** The server records of one scope, grouped by model (what persistence writes). */
  snapshotScope(scope: string): ModelsSnapshot {
    const out = {} as ModelsSnapshot;
    const prefix = scope.slice(0, scope.indexOf(':'));
    for (const m of MODEL_NAMES) {
      out[m] = [];
      if (SCOPE_KEYS[m].prefix !== prefix) continue;
      for (const row of this.#server.get(m)!.values()) if (scopeOf(m, row) === scope) out[m].push(row);
    }
    return out;
  }

  addPending(mutation: PendingMutation): void {
    this.#pending = [...this.#pending, mutation];
    this.#touch(mutation.model, mutation.id);
  }

  /** Changes a pending mutation's bookkeeping (status, attempts, syncId); records are unaffected. */
  updatePending(mutationId: string, patch: Partial<PendingMutation>): PendingMutation | undefined {
    const i = this.#pending.findIndex((p) => p.mutationId === mutationId);
    if (i < 0) return undefined;
    const next = { ...this.#pending[i]!, ...patch, mutationId };
    this.#pending = this.#pending.map((p, j) => (j === i ? next : p));
    return next;
  }

  /** Drops a pending mutation (confirmed or rolled back); returns it if it was there. */
  removePending(mutationId: string): PendingMutation | undefined {
    const found = this.#pending.find((p) => p.mutationId === mutationId);
    if (!found) return undefined;
    this.#pending = this.#pending.filter((p) => p !== found);
    this.#touch(found.model, found.id);
    return found;
  }

  /**
   * Publishes the changes since the last commit as a new `records` snapshot, sharing every
   * untouched model map and record. Returns whether anything visible changed.
   */
  commit(): boolean {
    if (this.#dirty.size === 0) return false;
    let next: Record<ModelName, Record<string, Row>> | undefined;
    for (const [model, ids] of this.#dirty) {
      const before = this.#visible[model] as Record<string, Row>;
      let copy: Record<string, Row> | undefined;
      for (const id of ids) {
        const value = this.#overlay(model, id);
        const prev = before[id];
        if (value === undefined) {
          if (prev === undefined) continue;
          copy ??= copyMap(before);
          delete copy[id];
        } else if (prev === undefined || !shallowEqual(prev, value)) {
          copy ??= copyMap(before);
          copy[id] = value;
        }
      }
      if (copy) {
        next ??= { ...(this.#visible as Record<ModelName, Record<string, Row>>) };
        next[model] = copy;
      }
    }
    this.#dirty.clear();
    if (!next) return false;
    this.#visible = next as RecordsByModel;
    return true;
  }

  /** The visible value of one record: the server row with its pending mutations applied in order. */
  #overlay(model: ModelName, id: string): Row | undefined {
    let row = this.#server.get(model)!.get(id);
    for (const p of this.#pending) {
      if (p.model !== model || p.id !== id) continue;
      switch (p.action) {
        case 'insert':
          row = { created_at: p.createdAt, updated_at: p.createdAt, ...row, ...p.data, id };
          break;
        case 'update':
          row = row ? { ...row, ...p.data, id } : undefined;
          break;
        case 'delete':
          row = undefined;
          break;
        default:
          return unreachable(p.action);
      }
    }
    return row;
  }

  #touch(model: ModelName, id: string): void {
    let set = this.#dirty.get(model);
    if (!set) {
      set = new Set();
      this.#dirty.set(model, set);
    }
    set.add(id);
  }
}
