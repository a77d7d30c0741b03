import {
  applyAppend,
  isAppendEventData,
  MODEL_NAMES,
  type ModelName,
  type ModelRecords,
  type ModelsSnapshot,
  type SyncEvent,
  scopeOf,
  unreachable,
} from '@openagents/sync-protocol';
import { OrderedRows } from './ordered-rows';
import type { PendingMutation, RecordChanges, RecordsView, ScopeRecords } from './types';

type Row = Record<string, unknown>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NO_ROWS: readonly never[] = Object.freeze([]);

function shallowEqual(a: Row, b: Row): boolean {
  if (a === b) return true;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.is(a[k], b[k]) || !(k in b)) return false;
  return true;
}

const pendingKey = (model: ModelName, id: string) => `${model}/${id}`;

/** Local text written at `offset` of a field by this client's stream writer. */
interface LocalText {
  readonly offset: number;
  readonly text: string;
}

/**
 * What applying one event did: `applied` (or nothing to do for a record we never saw), `gap` when
 * an append piece starts beyond the text we hold (the scope must catch up before it can apply),
 * `invalid` when the event's data does not have its action's shape (skipped).
 */
export type ApplyOutcome = 'applied' | 'gap' | 'invalid';

/**
 * Server records, plus the optimistic layer of pending mutations on top, kept as per-scope,
 * per-model ordered lists.
 *
 * Every index is keyed, so one change costs O(log n) in the number of records: the server layer
 * is a map per model (and a set of ids per scope, for bootstrap and unfollow); pending mutations
 * are indexed by record; the visible layer is one `OrderedRows` per (scope, model), in commit
 * order (`created_sync_id`, then id). Each change marks `(model, id)` dirty, and `commit()`
 * recomputes just the dirty ids and reports which (scope, model, id) changed. A record whose
 * visible value did not change keeps its object identity, and so does every list it sits in —
 * which is what lets a React selector skip work and renders when another record moves.
 */
export class RecordStore {
  #server = new Map<ModelName, Map<string, Row>>(MODEL_NAMES.map((m) => [m, new Map()]));
  /** Ids of the server records of each scope, per model. */
  #serverScopes = new Map<string, Map<ModelName, Set<string>>>();
  #pending: PendingMutation[] = [];
  #pendingByRecord = new Map<string, PendingMutation[]>();
  /** The visible record of each id, per model. */
  #visible = new Map<ModelName, Map<string, Row>>(MODEL_NAMES.map((m) => [m, new Map()]));
  /** The visible records of each scope, per model, in order. */
  #lists = new Map<string, Map<ModelName, OrderedRows>>();
  #scopeRecords = new Map<string, ScopeRecords>();
  /** Text this client's stream writers wrote that the server has not sent back yet, by record and field. */
  #localText = new Map<string, Map<string, LocalText>>();
  #dirty = new Map<ModelName, Set<string>>();
  #view: RecordsView = new StoreView(this);

  /** The visible records as of the last `commit()`; a new object after each commit that changed any. */
  get records(): RecordsView {
    return this.#view;
  }

  get pending(): readonly PendingMutation[] {
    return this.#pending;
  }

  /** Server-side record (without pending mutations), or undefined. */
  serverRecord(model: ModelName, id: string): Row | undefined {
    return this.#server.get(model)?.get(id);
  }

  /** Applies one log event to the server layer. */
  applyEvent(event: SyncEvent): ApplyOutcome {
    const rows = this.#server.get(event.model)!;
    const id = event.model_id;
    switch (event.action) {
      case 'insert':
        if (event.data) this.#setServer(event.model, { ...event.data, id });
        break;
      case 'update': {
        const prev = rows.get(id);
        // An update for a record we never saw cannot be rendered faithfully (it carries only the
        // changed fields); under the log's ordering this does not happen, so it is dropped.
        if (prev && event.data) this.#setServer(event.model, { ...prev, ...event.data, id });
        break;
      }
      case 'delete': {
        const prev = rows.get(id);
        if (prev) this.#deleteServer(event.model, prev);
        break;
      }
      case 'append': {
        // Checked by hand (as strictly as `AppendEventData`, without zod's copy per piece).
        const piece = event.data;
        if (!isAppendEventData(piece)) return 'invalid';
        const prev = rows.get(id);
        if (!prev) break; // as for an update: a record we never saw
        const current = prev[piece.field];
        if (current !== undefined && current !== null && typeof current !== 'string') return 'invalid';
        const outcome = applyAppend(current ?? '', piece);
        if (outcome.kind === 'gap') return 'gap';
        if (outcome.kind === 'covered') break;
        this.#setServer(event.model, {
          ...prev,
          [piece.field]: outcome.text,
          updated_at: piece.updated_at,
        });
        break;
      }
      default:
        unreachable(event.action);
    }
    return 'applied';
  }

  /** Replaces every server record of `scope` with `models` (a bootstrap, or a reset). */
  replaceScope(scope: string, models: Partial<Record<string, readonly Row[]>>): void {
    this.dropScope(scope);
    for (const m of MODEL_NAMES) {
      const list = models[m];
      if (!list) continue;
      for (const row of list) {
        const id = row.id;
        // Only well-formed records of this very scope: a row without a uuid id (say `__proto__`)
        // or belonging elsewhere would corrupt the maps or outlive the next reset of its scope.
        if (typeof id !== 'string' || !UUID.test(id) || scopeOf(m, row) !== scope) continue;
        this.#setServer(m, row);
      }
    }
  }

  /** Removes every server record that belongs to `scope`. */
  dropScope(scope: string): void {
    const byModel = this.#serverScopes.get(scope);
    if (!byModel) return;
    for (const [m, ids] of byModel) {
      const rows = this.#server.get(m)!;
      for (const id of ids) {
        rows.delete(id);
        this.#touch(m, id);
      }
    }
    this.#serverScopes.delete(scope);
  }

  /** The server records of one scope, grouped by model (what persistence writes). */
  snapshotScope(scope: string): ModelsSnapshot {
    const out = {} as ModelsSnapshot;
    const byModel = this.#serverScopes.get(scope);
    for (const m of MODEL_NAMES) {
      out[m] = [];
      const rows = this.#server.get(m)!;
      for (const id of byModel?.get(m) ?? []) out[m].push(rows.get(id)!);
    }
    return out;
  }

  addPending(mutation: PendingMutation): void {
    this.#pending = [...this.#pending, mutation];
    const key = pendingKey(mutation.model, mutation.id);
    this.#pendingByRecord.set(key, [...(this.#pendingByRecord.get(key) ?? []), mutation]);
    this.#touch(mutation.model, mutation.id);
  }

  /** Changes a pending mutation's bookkeeping (status, attempts, syncId); records are unaffected. */
  updatePending(mutationId: string, patch: Partial<PendingMutation>): PendingMutation | undefined {
    const i = this.#pending.findIndex((p) => p.mutationId === mutationId);
    if (i < 0) return undefined;
    const prev = this.#pending[i]!;
    const next = { ...prev, ...patch, mutationId };
    this.#pending = this.#pending.map((p, j) => (j === i ? next : p));
    const key = pendingKey(prev.model, prev.id);
    const forRecord = this.#pendingByRecord.get(key);
    if (forRecord)
      this.#pendingByRecord.set(
        key,
        forRecord.map((p) => (p === prev ? next : p)),
      );
    return next;
  }

  /** Drops a pending mutation (confirmed or rolled back); returns it if it was there. */
  removePending(mutationId: string): PendingMutation | undefined {
    const found = this.#pending.find((p) => p.mutationId === mutationId);
    if (!found) return undefined;
    this.#pending = this.#pending.filter((p) => p !== found);
    const key = pendingKey(found.model, found.id);
    const rest = (this.#pendingByRecord.get(key) ?? []).filter((p) => p !== found);
    if (rest.length > 0) this.#pendingByRecord.set(key, rest);
    else this.#pendingByRecord.delete(key);
    this.#touch(found.model, found.id);
    return found;
  }

  /**
   * Shows a piece this client is appending to `field` at `offset` (the stream writer's pieces)
   * before the server has it: the visible text is the server's text, then whatever of the local
   * text lies beyond its end. Pieces are placed by offset, never concatenated, so the server's
   * append events (however batched, repeated or replayed by a resume) join the local text without
   * doubling it; once the server's text reaches the end of the local one, the local text is
   * dropped.
   */
  appendLocal(model: ModelName, id: string, field: string, offset: number, piece: string): void {
    if (piece === '') return;
    const key = pendingKey(model, id);
    let byField = this.#localText.get(key);
    if (!byField) {
      byField = new Map();
      this.#localText.set(key, byField);
    }
    const local = byField.get(field);
    const end = local ? local.offset + local.text.length : -1;
    if (local && offset >= local.offset && offset <= end) {
      // Continues the local text (or, from inside it, a writer that restarted there).
      byField.set(field, { offset: local.offset, text: local.text.slice(0, offset - local.offset) + piece });
    } else {
      byField.set(field, { offset, text: piece });
    }
    this.#touch(model, id);
  }

  /** Forgets the local text of `field` (its writer failed or stopped: only the server's text stays). */
  dropLocal(model: ModelName, id: string, field: string): void {
    const key = pendingKey(model, id);
    const byField = this.#localText.get(key);
    if (!byField?.delete(field)) return;
    if (byField.size === 0) this.#localText.delete(key);
    this.#touch(model, id);
  }

  /** Whether `field` of a record still shows local text the server has not sent back. */
  hasLocal(model: ModelName, id: string, field: string): boolean {
    return this.#localText.get(pendingKey(model, id))?.has(field) ?? false;
  }

  /**
   * Publishes the changes since the last commit: recomputes the visible value of each touched
   * record and moves it in its scope's list. Returns what visibly changed (scope → model → ids),
   * or undefined when nothing did (then `records` keeps its identity).
   */
  commit(): RecordChanges | undefined {
    if (this.#dirty.size === 0) return undefined;
    let changes: Map<string, Map<ModelName, Set<string>>> | undefined;
    const note = (scope: string, model: ModelName, id: string) => {
      changes ??= new Map();
      let byModel = changes.get(scope);
      if (!byModel) {
        byModel = new Map();
        changes.set(scope, byModel);
      }
      let ids = byModel.get(model);
      if (!ids) {
        ids = new Set();
        byModel.set(model, ids);
      }
      ids.add(id);
    };
    // Rows to (re)place, per list: placed after the loop, so a bootstrap builds each list once.
    const placed = new Map<OrderedRows, Row[]>();
    for (const [model, ids] of this.#dirty) {
      const visible = this.#visible.get(model)!;
      for (const id of ids) {
        const value = this.#overlay(model, id);
        const prev = visible.get(id);
        if (value === undefined) {
          if (prev === undefined) continue;
          visible.delete(id);
          const scope = scopeOf(model, prev);
          this.#removeFromList(scope, model, id);
          note(scope, model, id);
          continue;
        }
        if (prev !== undefined && shallowEqual(prev, value)) continue;
        const scope = scopeOf(model, value);
        if (prev !== undefined) {
          const before = scopeOf(model, prev);
          if (before !== scope) {
            this.#removeFromList(before, model, id);
            note(before, model, id);
          }
        }
        visible.set(id, value);
        const list = this.#list(scope, model, true)!;
        const rows = placed.get(list);
        if (rows) rows.push(value);
        else placed.set(list, [value]);
        note(scope, model, id);
      }
    }
    for (const [list, rows] of placed) list.setMany(rows);
    this.#dirty.clear();
    if (!changes) return undefined;
    for (const scope of changes.keys()) {
      this.#pruneLists(scope);
      this.#scopeRecords.delete(scope);
    }
    this.#view = new StoreView(this);
    return changes;
  }

  /** For `RecordsView.get`. */
  visibleRecord(model: ModelName, id: string): Row | undefined {
    return this.#visible.get(model)?.get(id);
  }

  /** For `RecordsView.list`. */
  visibleList(scope: string, model: ModelName): readonly Row[] {
    return this.#list(scope, model, false)?.list() ?? NO_ROWS;
  }

  /** For `RecordsView.all`. */
  visibleAll(model: ModelName): Row[] {
    return [...this.#visible.get(model)!.values()];
  }

  /** For `RecordsView.scope`: the scope's lists by model, one object while none of them changes. */
  visibleScope(scope: string): ScopeRecords {
    let out = this.#scopeRecords.get(scope);
    if (!out) {
      const lists = {} as Record<ModelName, readonly Row[]>;
      for (const m of MODEL_NAMES) lists[m] = this.visibleList(scope, m);
      out = lists as unknown as ScopeRecords;
      this.#scopeRecords.set(scope, out);
    }
    return out;
  }

  #list(scope: string, model: ModelName, create: boolean): OrderedRows | undefined {
    let byModel = this.#lists.get(scope);
    if (!byModel) {
      if (!create) return undefined;
      byModel = new Map();
      this.#lists.set(scope, byModel);
    }
    let list = byModel.get(model);
    if (!list && create) {
      list = new OrderedRows();
      byModel.set(model, list);
    }
    return list;
  }

  #removeFromList(scope: string, model: ModelName, id: string): void {
    const byModel = this.#lists.get(scope);
    const list = byModel?.get(model);
    if (!list) return;
    list.delete(id);
  }

  /** Forgets the lists of `scope` left empty (after the rows of a commit are placed). */
  #pruneLists(scope: string): void {
    const byModel = this.#lists.get(scope);
    if (!byModel) return;
    for (const [model, list] of byModel) if (list.size === 0) byModel.delete(model);
    if (byModel.size === 0) this.#lists.delete(scope);
  }

  #setServer(model: ModelName, row: Row): void {
    const id = row.id as string;
    const rows = this.#server.get(model)!;
    const prev = rows.get(id);
    const scope = scopeOf(model, row);
    if (prev) {
      const before = scopeOf(model, prev);
      if (before !== scope) this.#serverScopes.get(before)?.get(model)?.delete(id);
    }
    rows.set(id, row);
    let byModel = this.#serverScopes.get(scope);
    if (!byModel) {
      byModel = new Map();
      this.#serverScopes.set(scope, byModel);
    }
    let ids = byModel.get(model);
    if (!ids) {
      ids = new Set();
      byModel.set(model, ids);
    }
    ids.add(id);
    this.#touch(model, id);
  }

  #deleteServer(model: ModelName, prev: Row): void {
    const id = prev.id as string;
    this.#server.get(model)!.delete(id);
    this.#serverScopes.get(scopeOf(model, prev))?.get(model)?.delete(id);
    this.#touch(model, id);
  }

  /** The visible value of one record: the server row with its pending mutations applied in order. */
  #overlay(model: ModelName, id: string): Row | undefined {
    let row = this.#server.get(model)!.get(id);
    // Most records (all of a bootstrap's, usually) have nothing on top of the server's value.
    if (this.#pendingByRecord.size === 0 && this.#localText.size === 0) return row;
    for (const p of this.#pendingByRecord.get(pendingKey(model, id)) ?? []) {
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
    const key = pendingKey(model, id);
    const byField = this.#localText.get(key);
    if (!byField || !row) return row;
    for (const [field, local] of byField) {
      const current: unknown = row[field];
      const text: string = typeof current === 'string' ? current : '';
      if (text.length >= local.offset + local.text.length) {
        // The server's text reached the end of ours: it has every local piece (or, if someone
        // else wrote there, its text wins anyway).
        byField.delete(field);
        continue;
      }
      // Behind the local text's start, the server's text cannot be continued yet: shown as it is.
      if (text.length >= local.offset)
        row = { ...row, [field]: text + local.text.slice(text.length - local.offset) };
    }
    if (byField.size === 0) this.#localText.delete(key);
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

/**
 * The `records` of a snapshot: a handle on the store's current records whose identity changes
 * with every commit that changed any. What it hands out (record objects, ordered arrays, per-scope
 * objects) is immutable and keeps its identity while unchanged.
 */
class StoreView implements RecordsView {
  #store: RecordStore;

  constructor(store: RecordStore) {
    this.#store = store;
  }

  get<M extends ModelName>(model: M, id: string): ModelRecords[M] | undefined {
    return this.#store.visibleRecord(model, id) as ModelRecords[M] | undefined;
  }

  list<M extends ModelName>(scope: string, model: M): readonly ModelRecords[M][] {
    return this.#store.visibleList(scope, model) as readonly ModelRecords[M][];
  }

  scope(scope: string): ScopeRecords {
    return this.#store.visibleScope(scope);
  }

  all<M extends ModelName>(model: M): ModelRecords[M][] {
    return this.#store.visibleAll(model) as ModelRecords[M][];
  }

  toJSON(): Record<ModelName, Record<string, unknown>> {
    const out = {} as Record<ModelName, Record<string, unknown>>;
    for (const m of MODEL_NAMES) {
      const rows = this.#store.visibleAll(m).sort((a, b) => ((a.id as string) < (b.id as string) ? -1 : 1));
      out[m] = Object.fromEntries(rows.map((r) => [r.id as string, r]));
    }
    return out;
  }
}
