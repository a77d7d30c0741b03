import { type Socket, io as socketIo } from 'socket.io-client';
import WebSocket from 'ws';
import { Histogram } from './histogram';
import { LeanWebSocket } from './lean-websocket';
import { ScopeCursors } from './scope-cursors';
import { applyStreamEvent, type StreamEvent, type StreamTextCounters, StreamTexts } from './stream-text';
import type { ConnectionSpec, ViewerTransport } from './worker-messages';

/** Counters a connection adds to; owned by its worker. */
export interface ConnectionCounters {
  delivered: number;
  duplicates: number;
  lost: number;
  frames: number;
  errors: Record<string, number>;
  unexpectedCloses: number;
  reconnects: number;
  bootstrapRecords: number;
  bootstrapFrames: number;
  /**
   * Events a connection holds through a snapshot instead of as events: a resume answered with a
   * bootstrap at L from cursor c covers c+1..L (the contract bootstraps a subscribe at cursor 0).
   */
  snapshotCovered: number;
  latency: Histogram;
  measureLatency: boolean;
  /** When set, every connection keeps its own copy of the streamed message texts (stream scenario). */
  streams?: StreamTextCounters;
}

/**
 * Counters at zero. `openingTokens` (the stream scenario's opening window, in tokens) turns on
 * the per-connection copy of the streamed texts; without it nothing of the stream is kept.
 */
export function newConnectionCounters(measureLatency = false, openingTokens?: number): ConnectionCounters {
  return {
    ...(openingTokens === undefined
      ? {}
      : {
          streams: {
            tokens: 0,
            skipped: 0,
            gaps: 0,
            latency: new Histogram(),
            openingLatency: new Histogram(),
            appendLatency: new Histogram(),
            openingTokens,
          },
        }),
    delivered: 0,
    duplicates: 0,
    lost: 0,
    frames: 0,
    errors: {},
    unexpectedCloses: 0,
    reconnects: 0,
    bootstrapRecords: 0,
    bootstrapFrames: 0,
    snapshotCovered: 0,
    latency: new Histogram(),
    measureLatency,
  };
}

interface IncomingFrame {
  type?: string;
  scope?: string;
  lastSyncId?: number;
  more?: boolean;
  models?: Record<string, unknown[]>;
  events?: ({ id: number; created_at: string } & StreamEvent)[];
  code?: string;
}

/**
 * One client of the load: a WebSocket speaking the contract's frames (or a Socket.IO socket
 * carrying the same objects), subscribed to its scopes, checking every event against its
 * cursors. `drop()` cuts it like a network failure and `open()` afterwards resumes each scope
 * from its cursor, as a real client would. An unexpected close is counted and resumed too.
 */
export class ClientConnection {
  readonly cursors = new ScopeCursors();
  readonly #spec: ConnectionSpec;
  readonly #counters: ConnectionCounters;
  readonly #onProgress: (connection: ClientConnection) => void;
  readonly #transport: ViewerTransport;
  #ws: WebSocket | undefined;
  #lean: LeanWebSocket | undefined;
  #io: Socket | undefined;
  #readyScopes = new Set<string>();
  #dropped = false;
  #closed = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  readonly #retryTimers = new Set<NodeJS.Timeout>();
  /** This viewer's streamed texts, when the counters ask for them. */
  readonly texts: StreamTexts | undefined;

  /**
   * `transport` (contract protocol only): `ws`, the `ws` package offering permessage-deflate as
   * browsers do; `lean`, the driver's own client (lean-websocket.ts), which offers no extension.
   */
  constructor(
    spec: ConnectionSpec,
    counters: ConnectionCounters,
    onProgress: (c: ClientConnection) => void,
    transport: ViewerTransport = 'ws',
  ) {
    this.#spec = spec;
    this.#transport = transport;
    this.#counters = counters;
    this.#onProgress = onProgress;
    this.texts = counters.streams ? new StreamTexts(counters.streams) : undefined;
  }

  /** host:port of the node this connection talks to. */
  get origin(): string {
    return new URL(this.#spec.url).host;
  }

  get scopes(): readonly string[] {
    return this.#spec.scopes;
  }

  get isOpen(): boolean {
    return (
      this.#ws?.readyState === WebSocket.OPEN || this.#lean?.isOpen === true || this.#io?.connected === true
    );
  }

  get isReady(): boolean {
    return this.#readyScopes.size === this.#spec.scopes.length;
  }

  /** Connects and subscribes; resolves once connected (or rejects on failure). */
  open(): Promise<void> {
    this.#dropped = false;
    this.#readyScopes.clear();
    if (this.#spec.protocol === 'socket.io') return this.#openSocketIo();
    return this.#transport === 'lean' ? this.#openLean() : this.#openWebSocket();
  }

  /** Cuts the connection without a closing handshake; keeps the cursors for the resume. */
  drop(): void {
    this.#dropped = true;
    clearTimeout(this.#reconnectTimer);
    for (const timer of this.#retryTimers) clearTimeout(timer);
    this.#retryTimers.clear();
    this.#ws?.terminate();
    this.#lean?.terminate();
    this.#io?.disconnect();
    this.#ws = undefined;
    this.#lean = undefined;
    this.#io = undefined;
  }

  close(): void {
    this.#closed = true;
    this.drop();
  }

  #subscribeFrames(): { scope: string; lastSyncId?: number }[] {
    return this.#spec.scopes.map((scope) => {
      const cursor = this.cursors.cursor(scope);
      return cursor === undefined ? { scope } : { scope, lastSyncId: cursor };
    });
  }

  #openWebSocket(): Promise<void> {
    return new Promise((resolve, reject) => {
      // permessage-deflate offered, as browsers do: a gateway that compresses (WS_COMPRESSION)
      // sends compressed frames, one that does not declines it and nothing changes.
      const ws = new WebSocket(this.#spec.url, { perMessageDeflate: true, handshakeTimeout: 20_000 });
      this.#ws = ws;
      let settled = false;
      ws.on('open', () => {
        settled = true;
        for (const frame of this.#subscribeFrames()) ws.send(JSON.stringify({ type: 'subscribe', ...frame }));
        resolve();
      });
      ws.on('message', (data) => {
        let frame: IncomingFrame;
        try {
          frame = JSON.parse(data.toString()) as IncomingFrame;
        } catch {
          this.#counters.errors.unparsable = (this.#counters.errors.unparsable ?? 0) + 1;
          return;
        }
        this.#onFrame(frame);
      });
      ws.on('error', (err) => {
        this.#counters.errors.transport = (this.#counters.errors.transport ?? 0) + 1;
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      ws.on('close', () => {
        if (this.#ws === ws) this.#onUnexpectedClose();
      });
    });
  }

  #openLean(): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const lean: LeanWebSocket = new LeanWebSocket(
        this.#spec.url,
        {
          open: () => {
            settled = true;
            for (const frame of this.#subscribeFrames())
              lean.send(JSON.stringify({ type: 'subscribe', ...frame }));
            resolve();
          },
          message: (text) => {
            let frame: IncomingFrame;
            try {
              frame = JSON.parse(text) as IncomingFrame;
            } catch {
              this.#counters.errors.unparsable = (this.#counters.errors.unparsable ?? 0) + 1;
              return;
            }
            this.#onFrame(frame);
          },
          error: (err) => {
            this.#counters.errors.transport = (this.#counters.errors.transport ?? 0) + 1;
            if (!settled) {
              settled = true;
              reject(err);
            }
          },
          close: () => {
            if (this.#lean === lean) this.#onUnexpectedClose();
          },
        },
        { handshakeTimeoutMs: 20_000 },
      );
      this.#lean = lean;
    });
  }

  #openSocketIo(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = socketIo(this.#spec.url, {
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
        timeout: 20_000,
      });
      this.#io = socket;
      let settled = false;
      socket.on('connect', () => {
        settled = true;
        for (const frame of this.#subscribeFrames()) socket.emit('subscribe', frame);
        resolve();
      });
      socket.on('frame', (frame: IncomingFrame) => this.#onFrame(frame));
      socket.on('connect_error', (err) => {
        this.#counters.errors.transport = (this.#counters.errors.transport ?? 0) + 1;
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      socket.on('disconnect', () => {
        if (this.#io === socket) this.#onUnexpectedClose();
      });
    });
  }

  #onFrame(frame: IncomingFrame): void {
    const counters = this.#counters;
    counters.frames++;
    const scope = frame.scope ?? '';
    switch (frame.type) {
      case 'bootstrap': {
        const before = this.cursors.cursor(scope);
        const at = frame.lastSyncId ?? 0;
        if (before !== undefined && at > before) counters.snapshotCovered += at - before;
        this.cursors.baseline(scope, at);
        // A paged bootstrap (v1.1) is complete with its last page, the one without `more`.
        if (!frame.more) this.#readyScopes.add(scope);
        counters.bootstrapFrames++;
        for (const records of Object.values(frame.models ?? {})) counters.bootstrapRecords += records.length;
        if (this.texts) {
          const now = Date.now();
          for (const m of (frame.models?.Message ?? []) as { id?: unknown; content?: unknown }[]) {
            if (typeof m.id === 'string' && typeof m.content === 'string')
              this.texts.replace(m.id, m.content, now);
          }
        }
        break;
      }
      case 'subscribed':
        if (!this.cursors.has(scope)) this.cursors.baseline(scope, frame.lastSyncId ?? 0);
        this.#readyScopes.add(scope);
        break;
      case 'sync': {
        // One pass over the events, no arrays per frame: at 15,000 tokens/s the viewers take
        // tens of thousands of frames a second, and this is the driver's own cost per frame.
        const events = frame.events ?? [];
        const cursors = this.cursors;
        const texts = this.texts;
        const now = texts || counters.measureLatency ? Date.now() : 0;
        for (const e of events) {
          if (counters.measureLatency) counters.latency.record(now - Date.parse(e.created_at));
          const skipped = cursors.applyOne(scope, e.id);
          if (skipped === 'duplicate') {
            counters.duplicates++;
            continue;
          }
          counters.delivered++;
          counters.lost += skipped;
          // Only events past the cursor reach the texts, as in a client: a duplicate is not re-applied.
          if (texts) applyStreamEvent(texts, e, now);
        }
        // A catch-up without a preceding bootstrap still makes the scope live.
        this.#readyScopes.add(scope);
        break;
      }
      case 'error': {
        const code = frame.code ?? 'unknown';
        counters.errors[code] = (counters.errors[code] ?? 0) + 1;
        // A subscribe the node could not serve ends that subscription ("subscribe again with
        // backoff"): do so from the cursor held, as a client would, so one refused subscribe
        // costs the run an error (still counted and reported), not a viewer.
        if ((code === 'internal' || code === 'rate_limited') && this.#spec.scopes.includes(scope))
          this.#resubscribeLater(scope);
        break;
      }
      default:
        break;
    }
    this.#onProgress(this);
  }

  #resubscribeLater(scope: string): void {
    const ws = this.#ws;
    const lean = this.#lean;
    const io = this.#io;
    const timer = setTimeout(
      () => {
        this.#retryTimers.delete(timer);
        if (this.#dropped || this.#closed || ws !== this.#ws || lean !== this.#lean || io !== this.#io)
          return;
        const cursor = this.cursors.cursor(scope);
        const frame = cursor === undefined ? { scope } : { scope, lastSyncId: cursor };
        if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'subscribe', ...frame }));
        else if (lean?.isOpen) lean.send(JSON.stringify({ type: 'subscribe', ...frame }));
        else io?.emit('subscribe', frame);
      },
      100 + Math.random() * 400,
    );
    this.#retryTimers.add(timer);
  }

  #onUnexpectedClose(): void {
    this.#ws = undefined;
    this.#lean = undefined;
    this.#io = undefined;
    if (this.#dropped || this.#closed) return;
    this.#counters.unexpectedCloses++;
    // Resume as a client would: after a jittered pause, from the cursors we hold.
    this.#reconnectTimer = setTimeout(
      () => {
        if (this.#dropped || this.#closed) return;
        this.#counters.reconnects++;
        // A failed WebSocket also emits 'close', which schedules the next try; Socket.IO does not.
        this.open().catch(() => {
          if (this.#spec.protocol === 'socket.io') this.#onUnexpectedClose();
        });
      },
      100 + Math.random() * 400,
    );
  }
}
