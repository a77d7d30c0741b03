import type { ModelName, ModelRecords } from '@openagents/sync-protocol';

/**
 * Where the live connection stands:
 * `idle` (never connected, or `disconnect()`ed) → `connecting` → `open`; after a drop
 * `reconnecting` (waiting out a backoff or retrying), `offline` (the browser says there is no
 * network; waits for the `online` event), and `closed` once `close()` was called (terminal).
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

/**
 * A followed scope: `pending` until the connection asks for it, `bootstrapping` while a first
 * snapshot is on its way, `live` once its records are current, `error` when the server refused it
 * (e.g. `forbidden`).
 */
export type ScopeStatus = 'pending' | 'bootstrapping' | 'live' | 'error';

export interface ScopeState {
  readonly status: ScopeStatus;
  /** Id of the last event of this scope applied to `records` (0: nothing yet). */
  readonly lastSyncId: number;
  readonly error?: string;
}

/** The records of one scope, each model as a list in commit order (see `RecordsView.list`). */
export type ScopeRecords = { readonly [M in ModelName]: readonly ModelRecords[M][] };

/**
 * The visible records (server state with the pending mutations applied on top), indexed by
 * scope, model and id. `state.records` is a new object after every change to any record, so
 * `state.records !== prev.records` says "something changed"; what it hands out is immutable and
 * keeps its identity while unchanged: a record object until that record changes, a list until a
 * record in it changes, is added or removed. It reads the client's current records: keep what you
 * read from it, not an old `records` object, to look at the past.
 */
export interface RecordsView {
  /** One record by id, or undefined. O(1). */
  get<M extends ModelName>(model: M, id: string): ModelRecords[M] | undefined;
  /**
   * The records of one model in one scope, in commit order: by `created_sync_id` (the log id of
   * the event that inserted the record), then id; records without one (optimistic inserts not
   * yet confirmed) last, in the order they were made. Maintained incrementally in a persistent
   * tree (a change costs O(log n), and never copies the list); the same array while nothing in it
   * changed. O(1). The array is frozen and lazy: `length`, indexing, `at()` and `slice()` read the
   * tree (O(log n)), anything else (`map`, iteration…) copies it out once per version. It cannot
   * be structured-cloned or sent with `postMessage`: copy it first (`[...list]`).
   */
  list<M extends ModelName>(scope: string, model: M): readonly ModelRecords[M][];
  /** Every model's list for one scope; the same object while none of them changed. */
  scope(scope: string): ScopeRecords;
  /** Every record of a model, across scopes, in no particular order. O(n): not for hot paths. */
  all<M extends ModelName>(model: M): ModelRecords[M][];
  /** Plain `{ [model]: { [id]: record } }`, ids sorted (for tests and debugging). */
  toJSON(): Record<ModelName, Record<string, unknown>>;
}

/**
 * What a published change touched: scope → model → ids whose visible value changed (inserted,
 * updated, deleted or moved). Handed to `subscribe` listeners so that bindings skip the scopes,
 * models and records they do not show.
 */
export type RecordChanges = ReadonlyMap<string, ReadonlyMap<ModelName, ReadonlySet<string>>>;

export type MutationAction = 'insert' | 'update' | 'delete';

/**
 * An optimistic write not yet confirmed by the log:
 * `sending` (a request is in flight), `retrying` (the last try failed with a network error, 5xx
 * or 429 and waits out a backoff before resending under the same key), `sent` (the server
 * committed it as `syncId`; it stays applied until the scope's cursor reaches that id).
 * A write the server rejects (4xx) is rolled back: it leaves this list and lands in `errors`.
 */
export interface PendingMutation {
  readonly mutationId: string;
  readonly model: ModelName;
  readonly action: MutationAction;
  readonly id: string;
  readonly data: Readonly<Record<string, unknown>> | null;
  readonly status: 'sending' | 'retrying' | 'sent';
  /** When it was made (ISO); an optimistic insert shows it as created_at/updated_at. */
  readonly createdAt: string;
  /** Failed tries so far. */
  readonly attempts: number;
  /** The last retryable failure, for display. */
  readonly error?: string;
  /** Shared by the entries of one `mutateBatch` call: committed or rolled back together. */
  readonly batchId?: string;
  /** Set once the server answered 2xx. */
  readonly scope?: string;
  readonly syncId?: number;
}

/** One remembered problem; `errors` keeps the most recent few. */
export interface SyncErrorEntry {
  readonly at: number;
  readonly kind: 'connection' | 'frame' | 'scope' | 'mutation' | 'storage' | 'auth';
  readonly code: string;
  readonly message: string;
  readonly scope?: string;
  readonly mutationId?: string;
  readonly status?: number;
}

/** The client's whole observable state. Every snapshot is immutable; unchanged parts keep identity. */
export interface SyncState {
  readonly connection: ConnectionStatus;
  readonly scopes: Readonly<Record<string, ScopeState>>;
  readonly records: RecordsView;
  readonly pending: readonly PendingMutation[];
  readonly errors: readonly SyncErrorEntry[];
}
