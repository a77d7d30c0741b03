import {
  AppendEventData,
  applyAppend,
  type BootstrapFrame,
  ServerFrame,
  type SyncEvent,
  type SyncFrame,
  unreachable,
} from '@openagents/sync-protocol';
import WebSocket from 'ws';

/**
 * A test client for the WebSocket `/sync` stream that checks the contract's guarantee (section 7)
 * from the outside: for every subscribed scope it records each event id it receives, applies
 * events to an in-memory copy of the scope's records strictly in order, and counts every
 * duplicate, gap and out-of-order delivery instead of papering over it. It reconnects on any close
 * (1012 drain, 1013 slow consumer, 1006 crash, ...) to the next gateway in its list, with capped
 * exponential backoff and full jitter, and resumes every scope from its cursor.
 *
 * It deliberately does not use the product client package: a test oracle that shared the client's
 * code would share its bugs.
 *
 * @example
 * const probe = new SyncProbe({ urls: [g1, g2], token, scopes: ['org:1', 'agent:2'] });
 * await probe.whenLive();
 * // ... writes ...
 * await waitForHeads([probe], heads);
 * assertStreamsComplete([probe], heads);
 */

/** A problem the probe saw; any of these breaks the guarantee. */
export type Violation =
  | { kind: 'duplicate'; scope: string; id: number; cursor: number }
  | { kind: 'gap'; scope: string; id: number; cursor: number }
  | { kind: 'out_of_order'; scope: string; id: number; maxSeen: number }
  | { kind: 'sync_before_bootstrap'; scope: string; id: number }
  | { kind: 'unexpected_bootstrap'; scope: string; lastSyncId: number; requested: number }
  | { kind: 'backwards_bootstrap'; scope: string; lastSyncId: number; cursor: number }
  | { kind: 'wrong_event_scope'; scope: string; id: number; eventScope: string }
  | { kind: 'latest_behind_events'; scope: string; latestSyncId: number; lastEventId: number }
  | { kind: 'update_of_unknown'; scope: string; id: number; model: string; modelId: string }
  | { kind: 'delete_of_unknown'; scope: string; id: number; model: string; modelId: string }
  | { kind: 'append_mismatch'; scope: string; id: number; model: string; modelId: string }
  | { kind: 'unsubscribed_scope'; scope: string }
  | { kind: 'bad_frame'; text: string; issue: string };

/** Records of one scope by model name, then by record id. */
export type ScopeState = Map<string, Map<string, Record<string, unknown>>>;

/** What the probe knows about one subscribed scope. */
export interface ProbeScope {
  readonly scope: string;
  /** Id of the last applied event; undefined until the first bootstrap (or a given start cursor). */
  cursor: number | undefined;
  /** Every event id received in `sync` frames, in arrival order (duplicates included). */
  readonly received: number[];
  /** Every bootstrap applied: its lastSyncId and whether the server flagged it a reset. */
  readonly bootstraps: { lastSyncId: number; reset: boolean }[];
  /** The records as built from bootstrap + applied events. */
  state: ScopeState;
  /** True once the current connection has acknowledged the subscription. */
  live: boolean;
  /** Highest id seen on the current connection, to detect an earlier id arriving after a later one. */
  maxSeen: number;
  /** lastSyncId sent with the latest subscribe (0 or absent asks for a bootstrap). */
  requested: number | undefined;
  /** The cursor the probe was created with (`ProbeOptions.cursors`), if any. */
  readonly startCursor: number | undefined;
}

export interface BackoffOptions {
  minMs: number;
  maxMs: number;
}

/** Defaults of the probe's reconnect policy. */
export const PROBE_BACKOFF: BackoffOptions = Object.freeze({ minMs: 50, maxMs: 1000 });

/** Capped exponential backoff with full jitter: a uniform delay in [0, min(max, min * 2^step)]. */
export function backoffDelay(step: number, options: BackoffOptions = PROBE_BACKOFF): number {
  const ceiling = Math.min(options.maxMs, options.minMs * 2 ** Math.min(step, 20));
  return Math.floor(Math.random() * ceiling);
}

export interface ProbeOptions {
  /** Gateway WebSocket URLs (`ws://host:port/sync`); the probe rotates through them on reconnect. */
  urls: readonly string[];
  token: string;
  scopes: readonly string[];
  /** Index into `urls` of the first gateway to try (default 0). */
  startAt?: number;
  /** Resume these scopes from a cursor instead of bootstrapping them. */
  cursors?: Readonly<Record<string, number>>;
  /**
   * Resume like a client that kept its state: every scope of `resumeFrom` that is also in
   * `scopes` starts from that probe's cursor and a copy of its records (as if read from storage).
   */
  resumeFrom?: SyncProbe;
  backoff?: BackoffOptions;
  /** A name for failure messages. */
  label?: string;
  /** Stop reconnecting after this many consecutive failed attempts (default: never). */
  maxAttempts?: number;
}

export interface CloseRecord {
  code: number;
  reason: string;
  url: string;
  at: number;
}

/** One client connection (at a time) following a set of scopes. */
export class SyncProbe {
  readonly label: string;
  readonly scopes = new Map<string, ProbeScope>();
  readonly violations: Violation[] = [];
  /** `error` frames received (code, scope). */
  readonly errors: { code: string; message: string; scope?: string | undefined }[] = [];
  /** Every close, in order. */
  readonly closes: CloseRecord[] = [];
  /** Connections that opened. */
  opens = 0;
  /** Connection attempts that failed before opening (refused, upgrade rejected, ...). */
  failedAttempts = 0;
  /** Upgrade responses other than 101, by status. */
  readonly rejectedUpgrades: number[] = [];

  readonly #urls: readonly string[];
  readonly #token: string;
  readonly #backoff: BackoffOptions;
  readonly #maxAttempts: number;
  #urlIndex: number;
  #ws: WebSocket | undefined;
  #opened = false;
  #step = 0;
  #stopped = false;
  #paused = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #liveWaiters = new Set<() => void>();

  constructor(options: ProbeOptions) {
    if (options.urls.length === 0) throw new Error('SyncProbe needs at least one url');
    this.label = options.label ?? 'probe';
    this.#urls = options.urls;
    this.#token = options.token;
    this.#backoff = options.backoff ?? PROBE_BACKOFF;
    this.#maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
    this.#urlIndex = (options.startAt ?? 0) % options.urls.length;
    for (const scope of options.scopes) {
      const previous = options.resumeFrom?.scopes.get(scope);
      const cursor = previous?.cursor ?? options.cursors?.[scope];
      this.scopes.set(scope, {
        scope,
        cursor,
        received: [],
        bootstraps: [],
        state: previous ? copyState(previous.state) : new Map(),
        live: false,
        maxSeen: cursor ?? 0,
        requested: undefined,
        startCursor: cursor,
      });
    }
    this.#connect();
  }

  /** The URL of the gateway currently (or last) connected to. */
  get url(): string {
    return this.#urls[this.#urlIndex]!;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  /** True when every scope is acknowledged on the current connection. */
  get live(): boolean {
    if (!this.connected) return false;
    for (const s of this.scopes.values()) if (!s.live) return false;
    return true;
  }

  /** Events received in `sync` frames over all scopes (duplicates included). */
  get eventsReceived(): number {
    let n = 0;
    for (const s of this.scopes.values()) n += s.received.length;
    return n;
  }

  /** Resolves once every scope is live on the current connection; rejects after `timeoutMs`. */
  whenLive(timeoutMs = 15_000): Promise<void> {
    if (this.live) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#liveWaiters.delete(done);
        reject(new Error(`${this.label} not live after ${timeoutMs} ms: ${this.describe()}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#liveWaiters.add(done);
    });
  }

  /**
   * Stops reading from the socket (the kernel buffers fill, then the server's send buffer): a slow
   * consumer as the gateway sees it. Frames already read may still be delivered.
   */
  pause(): void {
    this.#paused = true;
    this.#ws?.pause();
  }

  /** Reads again. */
  resume(): void {
    this.#paused = false;
    this.#ws?.resume();
  }

  /** Closes the current connection with `code` as if the network dropped it; the probe reconnects. */
  dropConnection(code = 4000): void {
    this.#ws?.close(code, 'probe drop');
  }

  /** Closes for good; resolves when the socket is closed. */
  stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'probe stop');
    });
  }

  /** A one-line summary for failure messages. */
  describe(): string {
    const scopes = [...this.scopes.values()]
      .map((s) => `${s.scope}@${s.cursor ?? '-'}${s.live ? '' : '(pending)'}`)
      .join(' ');
    const closes = this.closes.map((c) => c.code).join(',');
    return `${this.label} on ${this.url} opens=${this.opens} failed=${this.failedAttempts} closes=[${closes}] violations=${this.violations.length} errors=${this.errors.length} scopes: ${scopes}`;
  }

  #connect(): void {
    if (this.#stopped) return;
    const url = new URL(this.#urls[this.#urlIndex]!);
    url.searchParams.set('token', this.#token);
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 5000 });
    this.#ws = ws;
    this.#opened = false;
    ws.on('unexpected-response', (_req, res) => {
      this.rejectedUpgrades.push(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      this.#opened = true;
      this.opens++;
      if (this.#paused) ws.pause();
      for (const s of this.scopes.values()) {
        s.live = false;
        s.maxSeen = s.cursor ?? 0;
        s.requested = s.cursor;
        ws.send(
          JSON.stringify(
            s.cursor === undefined
              ? { type: 'subscribe', scope: s.scope }
              : { type: 'subscribe', scope: s.scope, lastSyncId: s.cursor },
          ),
        );
      }
    });
    ws.on('message', (data, isBinary) => {
      if (ws !== this.#ws) return;
      this.#onMessage(isBinary ? '<binary>' : data.toString());
    });
    ws.on('error', () => {
      // followed by 'close'; the close code says enough
    });
    ws.on('close', (code, reason) => {
      if (ws !== this.#ws) return;
      for (const s of this.scopes.values()) s.live = false;
      if (this.#opened) {
        this.closes.push({ code, reason: reason.toString(), url: url.origin, at: Date.now() });
      } else {
        this.failedAttempts++;
      }
      if (this.#stopped) return;
      if (!this.#opened && this.#step >= this.#maxAttempts) return;
      // Next gateway in the list: after a drain or a crash the same one is likely still gone.
      this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
      const delay = backoffDelay(this.#step++, this.#backoff);
      this.#timer = setTimeout(() => this.#connect(), delay);
    });
  }

  #onMessage(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.violations.push({ kind: 'bad_frame', text: text.slice(0, 200), issue: 'not JSON' });
      return;
    }
    const parsed = ServerFrame.safeParse(json);
    if (!parsed.success) {
      this.violations.push({ kind: 'bad_frame', text: text.slice(0, 200), issue: parsed.error.message });
      return;
    }
    const frame = parsed.data;
    switch (frame.type) {
      case 'bootstrap':
        this.#onBootstrap(frame);
        break;
      case 'sync':
        this.#onSync(frame);
        break;
      case 'subscribed': {
        const s = this.scopes.get(frame.scope);
        if (s) this.#markLive(s);
        break;
      }
      case 'error':
        this.errors.push({ code: frame.code, message: frame.message, scope: frame.scope });
        break;
      case 'pong':
      case 'authed':
        break;
      default:
        unreachable(frame);
    }
  }

  #onBootstrap(frame: BootstrapFrame): void {
    const s = this.scopes.get(frame.scope);
    if (!s) {
      this.violations.push({ kind: 'unsubscribed_scope', scope: frame.scope });
      return;
    }
    if ((s.requested ?? 0) > 0 && !frame.reset) {
      this.violations.push({
        kind: 'unexpected_bootstrap',
        scope: s.scope,
        lastSyncId: frame.lastSyncId,
        requested: s.requested ?? 0,
      });
    }
    if (s.cursor !== undefined && frame.lastSyncId < s.cursor) {
      this.violations.push({
        kind: 'backwards_bootstrap',
        scope: s.scope,
        lastSyncId: frame.lastSyncId,
        cursor: s.cursor,
      });
    }
    const state: ScopeState = new Map();
    for (const [model, records] of Object.entries(frame.models)) {
      const byId = new Map<string, Record<string, unknown>>();
      for (const record of records) byId.set(String(record.id), { ...record });
      state.set(model, byId);
    }
    s.state = state;
    s.cursor = frame.lastSyncId;
    s.maxSeen = frame.lastSyncId;
    s.bootstraps.push({ lastSyncId: frame.lastSyncId, reset: frame.reset === true });
    this.#markLive(s);
  }

  #onSync(frame: SyncFrame): void {
    const s = this.scopes.get(frame.scope);
    if (!s) {
      this.violations.push({ kind: 'unsubscribed_scope', scope: frame.scope });
      return;
    }
    const last = frame.events.at(-1);
    if (last && frame.latestSyncId < last.id) {
      this.violations.push({
        kind: 'latest_behind_events',
        scope: s.scope,
        latestSyncId: frame.latestSyncId,
        lastEventId: last.id,
      });
    }
    let resync = false;
    for (const event of frame.events) {
      s.received.push(event.id);
      if (event.scope !== s.scope) {
        this.violations.push({
          kind: 'wrong_event_scope',
          scope: s.scope,
          id: event.id,
          eventScope: event.scope,
        });
        continue;
      }
      if (s.cursor === undefined) {
        this.violations.push({ kind: 'sync_before_bootstrap', scope: s.scope, id: event.id });
        continue;
      }
      if (event.id <= s.cursor) {
        this.violations.push({ kind: 'duplicate', scope: s.scope, id: event.id, cursor: s.cursor });
      } else if (event.id === s.cursor + 1) {
        if (event.id < s.maxSeen) {
          this.violations.push({ kind: 'out_of_order', scope: s.scope, id: event.id, maxSeen: s.maxSeen });
        }
        this.#apply(s, event);
        s.cursor = event.id;
      } else {
        // Never applied: the state stays consistent with the cursor. Like a real client, resume
        // from the cursor on a new connection so the rest of the run still means something.
        this.violations.push({ kind: 'gap', scope: s.scope, id: event.id, cursor: s.cursor });
        resync = true;
      }
      s.maxSeen = Math.max(s.maxSeen, event.id);
    }
    this.#markLive(s);
    if (resync) this.dropConnection(4001);
  }

  #apply(s: ProbeScope, event: SyncEvent): void {
    let byId = s.state.get(event.model);
    if (!byId) {
      byId = new Map();
      s.state.set(event.model, byId);
    }
    switch (event.action) {
      case 'insert':
        byId.set(event.model_id, { ...(event.data ?? {}) });
        break;
      case 'update': {
        const current = byId.get(event.model_id);
        if (!current) {
          this.violations.push({
            kind: 'update_of_unknown',
            scope: s.scope,
            id: event.id,
            model: event.model,
            modelId: event.model_id,
          });
        }
        byId.set(event.model_id, { ...(current ?? { id: event.model_id }), ...(event.data ?? {}) });
        break;
      }
      case 'delete':
        if (!byId.delete(event.model_id)) {
          this.violations.push({
            kind: 'delete_of_unknown',
            scope: s.scope,
            id: event.id,
            model: event.model,
            modelId: event.model_id,
          });
        }
        break;
      case 'append': {
        // The log is gap-free, so every piece must start exactly at the field's current end.
        const current = byId.get(event.model_id);
        const piece = AppendEventData.safeParse(event.data);
        const text = piece.success ? current?.[piece.data.field] : undefined;
        if (!current || !piece.success || typeof text !== 'string' || piece.data.offset !== text.length) {
          this.violations.push({
            kind: 'append_mismatch',
            scope: s.scope,
            id: event.id,
            model: event.model,
            modelId: event.model_id,
          });
        }
        if (current && piece.success) {
          const outcome = applyAppend(String(current[piece.data.field] ?? ''), piece.data);
          if (outcome.kind === 'applied')
            byId.set(event.model_id, { ...current, [piece.data.field]: outcome.text });
        }
        break;
      }
      default:
        unreachable(event.action);
    }
  }

  #markLive(s: ProbeScope): void {
    if (s.live) return;
    s.live = true;
    this.#step = 0;
    if (!this.live) return;
    for (const waiter of [...this.#liveWaiters]) {
      this.#liveWaiters.delete(waiter);
      waiter();
    }
  }
}

/** Expected heads: last committed id per scope. */
export type Heads = ReadonlyMap<string, number>;

/** Polls until every probe's cursor reached the head of each of its scopes, or throws naming the laggards. */
export async function waitForHeads(
  probes: readonly SyncProbe[],
  heads: Heads,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lagging = probes.filter((p) =>
      [...p.scopes.values()].some((s) => (s.cursor ?? -1) < (heads.get(s.scope) ?? 0)),
    );
    if (lagging.length === 0) return;
    if (Date.now() > deadline) {
      const lines = lagging.slice(0, 10).map((p) => {
        const behind = [...p.scopes.values()]
          .filter((s) => (s.cursor ?? -1) < (heads.get(s.scope) ?? 0))
          .map((s) => `${s.scope} ${s.cursor ?? '-'}/${heads.get(s.scope)}`)
          .join(', ');
        return `  ${p.describe()}\n    behind: ${behind}`;
      });
      throw new Error(
        `${lagging.length}/${probes.length} probes not caught up after ${timeoutMs} ms:\n${lines.join('\n')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Asserts the guarantee for every probe and scope: no violation of any kind, the cursor at the
 * expected head, and the received ids exactly the contiguous run after the last bootstrap, or
 * after the cursor the probe started from (`L+1 … head`), each once. Throws one error listing the first problems and the totals.
 */
export function assertStreamsComplete(probes: readonly SyncProbe[], expectedHeads: Heads): void {
  const problems: string[] = [];
  const totals = { duplicate: 0, gap: 0, out_of_order: 0, other: 0, behind: 0, streams: 0 };
  for (const probe of probes) {
    for (const v of probe.violations) {
      if (v.kind === 'duplicate' || v.kind === 'gap' || v.kind === 'out_of_order') totals[v.kind]++;
      else totals.other++;
      if (problems.length < 20) problems.push(`${probe.label}: ${JSON.stringify(v)}`);
    }
    for (const s of probe.scopes.values()) {
      totals.streams++;
      const head = expectedHeads.get(s.scope);
      if (head === undefined) {
        problems.push(`${probe.label}: no expected head for ${s.scope}`);
        continue;
      }
      if (s.cursor !== head) {
        totals.behind++;
        if (problems.length < 20)
          problems.push(`${probe.label}: ${s.scope} cursor ${s.cursor ?? '-'} != head ${head}`);
      }
      const base = s.bootstraps.at(-1)?.lastSyncId ?? s.startCursor ?? 0;
      const afterBase = s.received.filter((id) => id > base);
      const contiguous = afterBase.length === head - base && afterBase.every((id, i) => id === base + 1 + i);
      if (!contiguous && problems.length < 20) {
        problems.push(
          `${probe.label}: ${s.scope} received after bootstrap@${base} is not ${base + 1}..${head}: ${summarizeIds(afterBase)}`,
        );
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `sync guarantee broken over ${probes.length} probes / ${totals.streams} streams ` +
        `(duplicates ${totals.duplicate}, gaps ${totals.gap}, out of order ${totals.out_of_order}, ` +
        `other violations ${totals.other}, behind ${totals.behind}):\n  ${problems.join('\n  ')}`,
    );
  }
}

/** Records of a scope as served by bootstrap (`models`), keyed like a probe's state. */
export function stateFromModels(
  models: Readonly<Record<string, readonly Record<string, unknown>[]>>,
): ScopeState {
  const state: ScopeState = new Map();
  for (const [model, records] of Object.entries(models)) {
    state.set(model, new Map(records.map((r) => [String(r.id), r])));
  }
  return state;
}

/**
 * Asserts that every probe's state of each scope equals `truth` (a fresh bootstrap or the
 * tables), record by record and field by field. Throws with the first differences.
 */
export function assertStatesMatch(
  probes: readonly SyncProbe[],
  truth: ReadonlyMap<string, ScopeState>,
): void {
  const problems: string[] = [];
  let compared = 0;
  for (const probe of probes) {
    for (const s of probe.scopes.values()) {
      const expected = truth.get(s.scope);
      if (!expected) {
        problems.push(`${probe.label}: no truth for ${s.scope}`);
        continue;
      }
      compared++;
      for (const diff of diffStates(s.state, expected)) {
        if (problems.length < 20) problems.push(`${probe.label} ${s.scope}: ${diff}`);
        else break;
      }
    }
  }
  if (problems.length > 0) {
    throw new Error(
      `probe state differs from the tables (${compared} scope states compared):\n  ${problems.join('\n  ')}`,
    );
  }
}

/** Differences between two scope states, as readable lines (empty when equal). */
export function diffStates(actual: ScopeState, expected: ScopeState): string[] {
  const out: string[] = [];
  const models = new Set([...actual.keys(), ...expected.keys()]);
  for (const model of models) {
    const a = actual.get(model) ?? new Map();
    const e = expected.get(model) ?? new Map();
    for (const [id, record] of e) {
      const got = a.get(id);
      if (!got) out.push(`${model} ${id} missing`);
      else {
        const keys = new Set([...Object.keys(record), ...Object.keys(got)]);
        for (const key of keys) {
          if (JSON.stringify(got[key]) !== JSON.stringify(record[key])) {
            out.push(`${model} ${id}.${key}: ${JSON.stringify(got[key])} != ${JSON.stringify(record[key])}`);
          }
        }
      }
    }
    for (const id of a.keys()) if (!e.has(id)) out.push(`${model} ${id} should not exist`);
  }
  return out;
}

function copyState(state: ScopeState): ScopeState {
  return new Map(
    [...state].map(([model, byId]) => [model, new Map([...byId].map(([id, r]) => [id, { ...r }]))]),
  );
}

/** `1..5, 7, 9..12` for failure messages. */
function summarizeIds(ids: readonly number[]): string {
  const parts: string[] = [];
  let i = 0;
  while (i < ids.length && parts.length < 12) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    parts.push(i === j ? `${ids[i]}` : `${ids[i]}..${ids[j]}`);
    i = j + 1;
  }
  return parts.join(', ') + (i < ids.length ? ', …' : '') || '(none)';
}
