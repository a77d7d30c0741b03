import {
  type CreateInput,
  createSchemas,
  fastServerFrame,
  type ModelName,
  ServerFrame,
  scopeOf,
  type UpdateInput,
  type WriteResult,
} from '@openagents/sync-protocol';
import { type BackoffOptions, backoff } from './backoff';
import { browserNetwork, Connection, type NetworkMonitor, type WebSocketConstructor } from './connection';
import { SyncClosedError } from './errors';
import { MutationSender } from './mutation-sender';
import { type LockManagerLike, Persister } from './persistence';
import { randomUuid } from './random-uuid';
import { Replica } from './replica';
import type { SyncStorage } from './storage';
import {
  type AppendableField,
  type AppendableModel,
  createStreamWriter,
  type StreamWriter,
  type StreamWriterOptions,
} from './stream-writer';
import { TokenSource } from './token-source';
import type {
  ConnectionStatus,
  MutationAction,
  PendingMutation,
  RecordChanges,
  SyncErrorEntry,
  SyncState,
} from './types';

/** A state listener: the new state, the previous one, and which records changed in between. */
/** `client.stream` options: where it starts, how it uploads, and its batching window. */
export type ClientStreamOptions = Pick<
  StreamWriterOptions,
  'offset' | 'upload' | 'coalesceMs' | 'coalescePieces'
>;

export type SyncListener = (state: SyncState, prev: SyncState, changes: RecordChanges) => void;

const NO_CHANGES: RecordChanges = new Map();

export interface SyncClientOptions {
  /** Base http(s) URL of the deployment, e.g. `https://sync.example.com`; the socket is `<url>/sync`. */
  url: string;
  /** A fixed bearer token… */
  token?: string;
  /** …or a function that fetches a fresh one (called at start, on 401/1008, and before `exp`). */
  getToken?: () => Promise<string>;
  /**
   * WebSocket implementation; defaults to `globalThis.WebSocket`. In Node 20 pass the `ws`
   * package's class. Anything with the WHATWG shape (`onopen`/`onmessage`/`onclose`, `send`,
   * `close`, `readyState`) fits — see `WebSocketLike`.
   */
  WebSocket?: new (
    url: string,
  ) => object;
  /** fetch implementation; defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
  /** Persist records, cursors and pending mutations (e.g. `createIndexedDbStorage()`). */
  storage?: SyncStorage;
  /** Minimum time between two writes of the same scope to storage (default 1000 ms). */
  persistThrottleMs?: number;
  /**
   * Web Locks, to tell which tabs sharing `storage` are still open (their pending writes are
   * theirs; a closed tab's are adopted). Defaults to `navigator.locks`; `null` turns it off, and
   * then every other instance's stored pending writes are adopted and resent (safe: same keys).
   */
  locks?: LockManagerLike | null;
  backoff?: Partial<BackoffOptions>;
  /** Ping period on an open socket (default 10 s). */
  pingIntervalMs?: number;
  /** A socket with no frame this long after a ping is declared dead (default 4 s). */
  pongTimeoutMs?: number;
  /**
   * The device's network state and `online`/`offline` events; defaults to the browser's
   * (`navigator.onLine`, `window`), `null` ignores them. On `offline` the socket is dropped and
   * the status is `offline` at once; on `online` it reconnects without waiting out a backoff.
   */
  network?: NetworkMonitor | null;
  /** Reconnect spread after a drain, close 1012 (default 5 s). */
  drainJitterMs?: number;
  /** Connect as soon as a scope is followed (default true); otherwise call `connect()`. */
  autoConnect?: boolean;
  /** How many errors `state.errors` keeps (default 20). */
  maxErrors?: number;
}

/** A write, applied optimistically at once and confirmed by the log. */
export interface MutationInput {
  model: ModelName;
  action: MutationAction;
  /** The record id: required for update/delete; generated for an insert when absent. */
  id?: string;
  data?: Record<string, unknown>;
  /** Idempotency key; generated when absent. */
  mutationId?: string;
}

/** The sync client: a store of records kept current over one WebSocket, plus optimistic writes. */
export interface SyncClient {
  getState(): SyncState;
  /**
   * Called after changes with the new and the previous state and the records that changed
   * (scope → model → ids), at most once per microtask (a burst of frames is one call); returns
   * unsubscribe. `getState()` is always current.
   */
  subscribe(listener: SyncListener): () => void;
  /** Follows a scope (ref-counted: every call needs its own unfollow). Returns unfollow. */
  subscribeScope(scope: string): () => void;
  /**
   * Applies a write optimistically and sends it. Resolves with the server's result; rejects with
   * a `MutationError` (rolled back) on a final refusal, or `SyncClosedError` if closed first.
   */
  mutate(m: MutationInput): Promise<WriteResult>;
  /**
   * Several writes committed atomically through `POST /api/mutations`: all applied at once, all
   * confirmed or all rolled back (the promise rejects with the batch's error).
   */
  mutateBatch(mutations: readonly MutationInput[]): Promise<WriteResult[]>;
  insert<M extends ModelName>(
    model: M,
    data: CreateInput<M>,
    options?: { mutationId?: string },
  ): Promise<WriteResult>;
  update<M extends ModelName>(
    model: M,
    id: string,
    data: UpdateInput<M>,
    options?: { mutationId?: string },
  ): Promise<WriteResult>;
  remove(model: ModelName, id: string, options?: { mutationId?: string }): Promise<WriteResult>;
  /**
   * A writer that streams text into one field (`Message.content`, `ReasoningStep.content`) with
   * offset-checked appends: batched while a request is in flight, retried with the same offset
   * and text, never doubled. It starts at `options.offset`, or the field's length in the
   * client's current records (0 if the record is not there), and waits for this client's own
   * pending writes of the record (its insert) to be answered first. A final failure is reported
   * in `state.errors` and rejects the writer's `done`. Uploads are batched client-side over a
   * window (`coalesceMs`, default 40; `coalescePieces`), while every piece shows in this client's
   * records at once.
   */
  stream<M extends AppendableModel>(
    model: M,
    id: string,
    field: AppendableField<M>,
    options?: ClientStreamOptions,
  ): StreamWriter;
  connect(): void;
  disconnect(): void;
  /** Stops everything and writes what storage still owes. */
  close(): Promise<void>;
  /** Resolves once storage has been read (immediately without storage). */
  readonly ready: Promise<void>;
  /**
   * Applies one raw server frame as if it came over the socket. This is the client's message
   * handler, exposed for tests and for transports other than WebSocket.
   */
  receiveFrame(text: string): void;
}

/**
 * Creates a sync client.
 *
 * @example
 * const client = createSyncClient({ url: 'https://sync.example.com', getToken });
 * const unfollow = client.subscribeScope(`org:${orgId}`);
 * client.subscribe((s, prev, changes) => {
 *   if (changes.has(`org:${orgId}`)) render(s.records.list(`org:${orgId}`, 'Agent'));
 * });
 * await client.insert('Agent', { org_id: orgId, name: 'Scout' });
 */
export function createSyncClient(options: SyncClientOptions): SyncClient {
  return new SyncClientImpl(options);
}

type Waiter = { resolve: (r: WriteResult) => void; reject: (e: unknown) => void };

class SyncClientImpl implements SyncClient {
  readonly ready: Promise<void>;
  #state: SyncState;
  #listeners = new Set<SyncListener>();
  #replica: Replica;
  #connection: Connection | undefined;
  #sender: MutationSender;
  #persister: Persister | undefined;
  #tokens: TokenSource;
  #waiters = new Map<string, Waiter>();
  /** Settles when the mutation's HTTP request is answered (either way); by mutationId. */
  #answered = new Map<string, Promise<unknown>>();
  #writers = new Set<StreamWriter>();
  #base: string;
  #fetch: typeof fetch;
  #errors: SyncErrorEntry[] = [];
  #maxErrors: number;
  #connectionStatus: ConnectionStatus = 'idle';
  #options: SyncClientOptions;
  #wsUrl: string;
  #closed = false;
  #hydrated = false;
  #wantConnect = false;
  #publishScheduled = false;
  #resubscribeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Scopes whose subscribe the server failed, waiting out their backoff before asking again. */
  #scopeRetryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  #pendingChanged = false;
  /** After disconnect(), following a scope does not reconnect by itself; connect() does. */
  #disconnectedByUser = false;
  #unfollowTimers = new Set<ReturnType<typeof setTimeout>>();
  #network: NetworkMonitor | undefined;

  constructor(options: SyncClientOptions) {
    this.#options = options;
    this.#maxErrors = options.maxErrors ?? 20;
    const base = options.url.replace(/\/+$/, '');
    this.#wsUrl = `${base.replace(/^http/i, 'ws')}/sync`;
    this.#tokens = new TokenSource({
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.getToken ? { getToken: options.getToken } : {}),
      onError: (e) => this.#report({ kind: 'auth', code: 'token_refresh_failed', message: String(e) }),
    });
    this.#replica = new Replica({
      send: (frame) => this.#connection?.send(frame),
      report: (e) => {
        this.#report(e);
        if (e.code === 'rate_limited') this.#scheduleResubscribe();
        else if (e.code === 'internal' && e.scope !== undefined) this.#scheduleScopeRetry(e.scope);
      },
    });
    const fetchImpl = options.fetch ?? globalThis.fetch?.bind(globalThis);
    this.#base = base;
    this.#fetch = fetchImpl;
    this.#sender = new MutationSender({
      baseUrl: base,
      fetch: fetchImpl,
      tokens: this.#tokens,
      backoff: options.backoff ?? {},
      hooks: {
        committed: (m, result) => {
          this.#replica.mutationCommitted(m.mutationId, result);
          this.#publish();
          this.#settle(m.mutationId, (w) => w.resolve(result));
        },
        retrying: (m, attempts, message) => {
          this.#replica.store.updatePending(m.mutationId, { status: 'retrying', attempts, error: message });
          this.#publishPendingChange();
        },
        rejected: (m, error) => {
          this.#replica.store.removePending(m.mutationId);
          this.#report({
            kind: 'mutation',
            code: error.code,
            message: error.message,
            mutationId: m.mutationId,
            status: error.status,
          });
          this.#publishPendingChange();
          this.#settle(m.mutationId, (w) => w.reject(error));
        },
      },
    });
    this.#state = {
      connection: 'idle',
      scopes: this.#replica.scopes,
      records: this.#replica.store.records,
      pending: this.#replica.store.pending,
      errors: [],
    };
    this.#network = options.network === null ? undefined : (options.network ?? browserNetwork());
    this.#network?.addEventListener('online', this.#onOnline);
    this.#network?.addEventListener('offline', this.#onOffline);
    if (options.storage) {
      this.#persister = new Persister(
        options.storage,
        this.#replica,
        options.persistThrottleMs ?? 1000,
        (e) => this.#report(e),
        {
          id: randomUuid(),
          locks:
            options.locks === null
              ? undefined
              : (options.locks ??
                (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks),
        },
      );
      // Writes made before storage is read wait, so that restored (older) ones go out first.
      this.#sender.hold();
      this.ready = this.#persister.hydrate().then((restored) => {
        this.#hydrated = true;
        this.#publish();
        this.#sender.release(restored.map((p) => ({ ...p, status: 'sending' as const })));
        if (this.#wantConnect) this.connect();
      });
    } else {
      this.#hydrated = true;
      this.ready = Promise.resolve();
    }
  }

  /**
   * The gateway refused a frame for its rate; it does not say which, so shortly afterwards every
   * scope still waiting for an answer is asked for again (one timer however many errors come).
   */
  #scheduleResubscribe(): void {
    if (this.#resubscribeTimer || this.#closed) return;
    const delay = 250 + backoff(0, this.#options.backoff ?? {});
    this.#resubscribeTimer = setTimeout(() => {
      this.#resubscribeTimer = undefined;
      if (this.#closed) return;
      this.#replica.resubscribeUnanswered();
      this.#publish();
    }, delay);
  }

  /**
   * The server failed a scope's subscribe (`internal`: the gateway could not read the log, and
   * says to subscribe again with backoff): it is asked for again after a jittered delay that grows
   * with the failures in a row, so a storm of failed subscribes does not come back all at once.
   */
  #scheduleScopeRetry(scope: string): void {
    if (this.#closed || this.#scopeRetryTimers.has(scope)) return;
    const step = Math.max(0, this.#replica.subscribeFailures(scope) - 1);
    const delay = backoff(step, this.#options.backoff ?? {});
    this.#scopeRetryTimers.set(
      scope,
      setTimeout(() => {
        this.#scopeRetryTimers.delete(scope);
        if (this.#closed) return;
        this.#replica.resubscribeFailed(scope);
        this.#publish();
      }, delay),
    );
  }

  /** The browser says the network is back: skip the remaining backoff waits. */
  #onOnline = () => {
    this.#connection?.retryNow();
    this.#sender.retryNow();
  };

  /** The browser says the network is gone: do not show `open` until a ping times out. */
  #onOffline = () => {
    this.#connection?.networkLost();
  };

  getState(): SyncState {
    this.#flush();
    return this.#state;
  }

  subscribe(listener: SyncListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  subscribeScope(scope: string): () => void {
    if (this.#closed) return () => {};
    this.#replica.follow(scope);
    this.#publish();
    if (this.#options.autoConnect !== false && !this.#disconnectedByUser) this.connect();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      // Deferred so that an unmount immediately followed by a mount (React StrictMode, a route
      // change that keeps the scope) does not unsubscribe and re-bootstrap for nothing.
      const timer = setTimeout(() => {
        this.#unfollowTimers.delete(timer);
        if (this.#closed) return;
        this.#replica.unfollow(scope);
        this.#publish();
      }, 0);
      this.#unfollowTimers.add(timer);
    };
  }

  mutate(input: MutationInput): Promise<WriteResult> {
    return this.#submit([input], undefined).then((results) => results[0]!);
  }

  mutateBatch(inputs: readonly MutationInput[]): Promise<WriteResult[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    return this.#submit(inputs, randomUuid());
  }

  /** Validates, applies optimistically, and queues one request (a single write or a batch). */
  #submit(inputs: readonly MutationInput[], batchId: string | undefined): Promise<WriteResult[]> {
    if (this.#closed) return Promise.reject(new SyncClosedError());
    const group: PendingMutation[] = [];
    const createdAt = new Date().toISOString();
    for (const input of inputs) {
      const mutationId = input.mutationId ?? randomUuid();
      const dataId = typeof input.data?.id === 'string' ? input.data.id : undefined;
      // The server keeps ids in lower case; so does the optimistic record, or both would show.
      const id = (
        input.id ??
        dataId ??
        (input.action === 'insert' ? randomUuid() : undefined)
      )?.toLowerCase();
      if (!id) return Promise.reject(new TypeError(`${input.action} needs an id`));
      if (
        this.#waiters.has(mutationId) ||
        group.some((p) => p.mutationId === mutationId) ||
        this.#replica.store.pending.some((p) => p.mutationId === mutationId)
      ) {
        return Promise.reject(new TypeError(`mutation ${mutationId} is already pending`));
      }
      let data: Record<string, unknown> | null = null;
      if (input.action === 'insert') {
        // Fill the model's defaults (status: 'idle', …) so the optimistic record looks like the
        // one the server will send; an invalid body goes out as given and the server says why.
        const parsed = createSchemas[input.model].safeParse({ ...input.data, id });
        data = parsed.success ? (parsed.data as Record<string, unknown>) : { ...input.data, id };
      } else if (input.action === 'update') {
        data = { ...input.data };
      }
      group.push({
        mutationId,
        model: input.model,
        action: input.action,
        id,
        data,
        status: 'sending',
        createdAt,
        attempts: 0,
        ...(batchId !== undefined ? { batchId } : {}),
      });
    }
    const promises = group.map(
      (p) =>
        new Promise<WriteResult>((resolve, reject) => this.#waiters.set(p.mutationId, { resolve, reject })),
    );
    for (const [i, p] of group.entries()) {
      const answered = promises[i]!.then(
        () => {},
        () => {},
      );
      this.#answered.set(p.mutationId, answered);
      void answered.then(() => this.#answered.delete(p.mutationId));
    }
    for (const p of group) this.#replica.store.addPending(p);
    this.#publishPendingChange();
    this.#sender.enqueue(group);
    return Promise.all(promises);
  }

  insert<M extends ModelName>(model: M, data: CreateInput<M>, options: { mutationId?: string } = {}) {
    return this.mutate({ model, action: 'insert', data: data as Record<string, unknown>, ...options });
  }

  update<M extends ModelName>(
    model: M,
    id: string,
    data: UpdateInput<M>,
    options: { mutationId?: string } = {},
  ) {
    return this.mutate({ model, action: 'update', id, data: data as Record<string, unknown>, ...options });
  }

  remove(model: ModelName, id: string, options: { mutationId?: string } = {}) {
    return this.mutate({ model, action: 'delete', id, ...options });
  }

  stream<M extends AppendableModel>(
    model: M,
    id: string,
    field: AppendableField<M>,
    options: ClientStreamOptions = {},
  ): StreamWriter {
    const key = id.toLowerCase();
    const record = this.getState().records.get(model, key) as Record<string, unknown> | undefined;
    const current = record?.[field];
    const before = this.#replica.store.pending
      .filter((p) => p.model === model && p.id === key)
      .map((p) => this.#answered.get(p.mutationId));
    const writer = createStreamWriter<M>({
      baseUrl: this.#base,
      // The platform's fetch unless the application gave one: `auto` then streams in Node.
      ...(this.#options.fetch ? { fetch: this.#fetch } : {}),
      ...(options.upload ? { upload: options.upload } : {}),
      ...(options.coalesceMs !== undefined ? { coalesceMs: options.coalesceMs } : {}),
      ...(options.coalescePieces !== undefined ? { coalescePieces: options.coalescePieces } : {}),
      tokens: this.#tokens,
      backoff: this.#options.backoff ?? {},
      model,
      id: key,
      field,
      offset: options.offset ?? (typeof current === 'string' ? current.length : 0),
      after: Promise.all(before),
      hooks: {
        failed: (error) => {
          this.#report({
            kind: 'mutation',
            code: error.code,
            message: `stream ${model}.${field} ${key}: ${error.message}`,
            mutationId: error.mutationId,
            status: error.status,
          });
          this.#publishPendingChange();
        },
      },
    });
    if (this.#closed) writer.close();
    else {
      this.#writers.add(writer);
      const forget = () => this.#writers.delete(writer);
      writer.done.then(forget, forget);
      this.#showLocally(writer, model, key, field);
    }
    return writer;
  }

  /**
   * Optimistic appends: every piece the writer accepts shows at once in this client's records,
   * placed at the offset it was written at (see `RecordStore.appendLocal`), and gives way to the
   * server's text as its append events arrive. A writer that fails takes its unconfirmed text
   * away; one that finishes leaves it until the events come — or drops it at once when nobody
   * here follows the record's scope, so none will.
   */
  #showLocally(writer: StreamWriter, model: ModelName, id: string, field: string): void {
    const store = this.#replica.store;
    const write = writer.write.bind(writer);
    writer.write = (piece: string) => {
      const at = writer.offset;
      write(piece);
      // Only what the writer took (not after a failure, not an empty piece) is shown.
      if (typeof piece !== 'string' || writer.offset !== at + piece.length || piece === '') return;
      store.appendLocal(model, id, field, at, piece);
      this.#publish();
    };
    writer.done.then(
      () => {
        const record = this.getState().records.get(model, id) as Record<string, unknown> | undefined;
        if (record && this.#replica.isFollowed(scopeOf(model, record))) return;
        store.dropLocal(model, id, field);
        this.#publish();
      },
      () => {
        store.dropLocal(model, id, field);
        this.#publish();
      },
    );
  }

  connect(): void {
    if (this.#closed) return;
    this.#wantConnect = true;
    this.#disconnectedByUser = false;
    if (!this.#hydrated) return; // resumes from the stored cursors once they are read
    this.#connection ??= this.#createConnection();
    this.#connection?.connect();
  }

  disconnect(): void {
    this.#wantConnect = false;
    this.#disconnectedByUser = true;
    this.#connection?.disconnect();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#wantConnect = false;
    this.#connection?.close();
    this.#closed = true;
    this.#network?.removeEventListener('online', this.#onOnline);
    this.#network?.removeEventListener('offline', this.#onOffline);
    if (this.#resubscribeTimer) clearTimeout(this.#resubscribeTimer);
    for (const t of this.#scopeRetryTimers.values()) clearTimeout(t);
    this.#scopeRetryTimers.clear();
    for (const t of this.#unfollowTimers) clearTimeout(t);
    this.#unfollowTimers.clear();
    this.#sender.close();
    for (const writer of this.#writers) writer.close();
    this.#connectionStatus = 'closed';
    this.#publish();
    for (const [id, w] of this.#waiters) {
      this.#waiters.delete(id);
      w.reject(new SyncClosedError());
    }
    this.#flush();
    if (this.#persister) {
      this.#persister.dispose();
      await this.ready.catch(() => {});
      await this.#persister.close();
    }
  }

  receiveFrame(text: string): void {
    if (this.#closed) return;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.#report({ kind: 'frame', code: 'bad_json', message: 'a frame was not JSON' });
      this.#publish();
      return;
    }
    // The hot frame (a `sync` frame per streamed piece) is checked by hand, exactly as strictly;
    // anything it does not take (other frames, invalid ones) goes through zod, which reports.
    let frame = fastServerFrame(json);
    if (!frame) {
      const parsed = ServerFrame.safeParse(json);
      if (!parsed.success) {
        const type = (json as { type?: unknown } | null)?.type;
        this.#report({
          kind: 'frame',
          code: 'bad_frame',
          message: `unreadable frame (type ${String(type)})`,
        });
        this.#publish();
        return;
      }
      frame = parsed.data;
    }
    this.#replica.receive(frame);
    this.#publish();
  }

  #createConnection(): Connection | undefined {
    const WS = (this.#options.WebSocket ?? globalThis.WebSocket) as WebSocketConstructor | undefined;
    if (!WS) {
      this.#report({ kind: 'connection', code: 'no_websocket', message: 'no WebSocket implementation' });
      this.#publish();
      return undefined;
    }
    return new Connection({
      url: this.#wsUrl,
      WebSocket: WS,
      tokens: this.#tokens,
      backoff: this.#options.backoff ?? {},
      pingIntervalMs: this.#options.pingIntervalMs ?? 10_000,
      pongTimeoutMs: this.#options.pongTimeoutMs ?? 4_000,
      network: this.#network,
      drainJitterMs: this.#options.drainJitterMs ?? 5_000,
      refreshAfterFailures: 2,
      hooks: {
        opened: () => {
          this.#replica.connected();
          this.#sender.retryNow(); // the network is evidently back
          this.#publish();
        },
        message: (text) => this.receiveFrame(text),
        dropped: () => {
          this.#replica.disconnected();
          this.#publish();
        },
        status: (status) => {
          this.#connectionStatus = status;
          this.#publish();
        },
        report: (e) => {
          this.#report(e);
          this.#publish();
        },
      },
    });
  }

  #settle(mutationId: string, fn: (w: Waiter) => void): void {
    const w = this.#waiters.get(mutationId);
    if (!w) return;
    this.#waiters.delete(mutationId);
    fn(w);
  }

  #report(error: Omit<SyncErrorEntry, 'at'>): void {
    this.#errors = [...this.#errors, { ...error, at: Date.now() }].slice(-this.#maxErrors);
  }

  /** Builds the next snapshot from what changed and tells listeners (once per microtask). */
  #publish(): void {
    if (this.#publishScheduled) return;
    this.#publishScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /**
   * Publishes after a pending write changed (added, retrying, failed): the pending list is
   * persisted even when its snapshot looks the same. Error reports alone use `#publish`.
   */
  #publishPendingChange(): void {
    this.#pendingChanged = true;
    this.#publish();
  }

  /**
   * Builds the next snapshot and tells listeners. Changes are applied to the server layer at
   * once but published once per microtask: frames that arrive together (a TCP read carrying many
   * frames, a burst of catch-up) recompute each touched record once, not once per frame.
   * `getState()` flushes first, so a reader never sees a stale snapshot.
   */
  #flush(): void {
    if (!this.#publishScheduled) return;
    this.#publishScheduled = false;
    const pendingChanged = this.#pendingChanged;
    this.#pendingChanged = false;
    const store = this.#replica.store;
    const recordChanges = store.commit() ?? NO_CHANGES;
    const prev = this.#state;
    const next: SyncState = {
      connection: this.#connectionStatus,
      scopes: this.#replica.scopes,
      records: store.records,
      pending: store.pending,
      errors: this.#errors,
    };
    const changes = this.#replica.takeChanges();
    if (pendingChanged || next.pending !== prev.pending) changes.pending = true;
    if (this.#persister && this.#hydrated) this.#persister.note(changes);
    else if (this.#persister && changes.pending) {
      // Before storage is read, scope records must not be written (they would replace what is
      // stored before it is read), but a write the user made must: if the tab closes before
      // hydration ends, the next one adopts it from this instance's key instead of losing it.
      this.#persister.note({ scopes: new Set(), dropped: new Set(), pending: true });
    }
    if (
      next.connection === prev.connection &&
      next.scopes === prev.scopes &&
      next.records === prev.records &&
      next.pending === prev.pending &&
      next.errors === prev.errors
    ) {
      return;
    }
    this.#state = next;
    for (const listener of this.#listeners) listener(next, prev, recordChanges);
  }
}
