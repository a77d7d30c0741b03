import type { HistogramData } from './histogram';

/** One client connection a worker opens: where, how, and which scopes it subscribes. */
export interface ConnectionSpec {
  /** ws://…/sync?token=… for the contract protocol, http://host:port for Socket.IO. */
  url: string;
  protocol: 'sync' | 'socket.io';
  scopes: string[];
}

/**
 * The WebSocket client of contract-protocol connections: `ws`, the `ws` package (offers
 * permessage-deflate, as browsers do); `lean`, the driver's own (lean-websocket.ts: no extension,
 * a fraction of the CPU per frame).
 */
export type ViewerTransport = 'ws' | 'lean';

/** How viewers track streamed texts: a reply's first `openingTokens` tokens are its opening. */
export interface StreamTracking {
  openingTokens: number;
}

/** Commands from the main thread; every reply carries the command's `seq`. */
export type WorkerCommand =
  | {
      type: 'open';
      seq: number;
      specs: ConnectionSpec[];
      measureLatency: boolean;
      timeoutMs: number;
      /** Add to the connections already open without resetting the counters (a ramp in steps). */
      keepCounters?: boolean;
      /** Keep each connection's copy of the streamed message texts (the stream scenario). */
      streams?: StreamTracking;
      /** `ws` when omitted. */
      transport?: ViewerTransport;
    }
  /** Forget counters and latency samples so far: the measurement window starts now. */
  | { type: 'window'; seq: number }
  /**
   * Cut every connection at once (as a network blip would), keeping the cursors; or only those
   * at `connections`, indices into this worker's connections in the order they were opened.
   */
  | { type: 'drop'; seq: number; connections?: number[] }
  /** Reconnect every connection (or those at `connections`) and resume each scope from its cursor. */
  | { type: 'resume'; seq: number; connections?: number[] }
  /** From now on, count a connection as caught up once each scope's cursor reaches these heads. */
  | { type: 'expect'; seq: number; heads: [string, number][] }
  | { type: 'snapshot'; seq: number }
  | { type: 'close'; seq: number };

/** Counters of one worker (or, summed, of all of them). */
export interface WorkerSnapshot {
  connections: number;
  open: number;
  /** Connections whose every scope has a baseline (bootstrap or subscribed). */
  ready: number;
  /** Events accepted in order since the window started. */
  delivered: number;
  duplicates: number;
  lost: number;
  frames: number;
  /** `error` frames by code, and transport errors as `transport`. */
  errors: Record<string, number>;
  unexpectedCloses: number;
  reconnects: number;
  latency: HistogramData;
  /** Connections whose cursors reached the expected heads. */
  caughtUp: number;
  /** Wall-clock ms when the last of this worker's connections caught up (null while some lag). */
  caughtUpAt: number | null;
  /** Events still missing below the expected heads, summed over connections and scopes. */
  behind: number;
  /** Records received in bootstrap frames. */
  bootstrapRecords: number;
  bootstrapFrames: number;
  /** Events held through a bootstrap answering a resume (from cursor c to L: L − c). */
  snapshotCovered: number;
  /** Distinct `host|scope@cursor` at the last drop: what a resume must replay, per node. */
  resumePairs: string[];
  /** The stream scenario's view of the texts, when the connections track them. */
  streams?: StreamSnapshot;
}

/** What the viewers saw of streamed texts: tokens, token latency, and each final text's digest. */
export interface StreamSnapshot {
  tokens: number;
  skipped: number;
  gaps: number;
  /** Token generation (at the writer) to arrival in a viewer's text, past each reply's opening. */
  latency: HistogramData;
  /** The same for each reply's first tokens (its stream opening). */
  openingLatency: HistogramData;
  /** Per append event past the opening: its newest token's generation to arrival (stream-text.ts). */
  appendLatency: HistogramData;
  /** `[message id, length, sha1, viewers]`: how many viewers hold that exact text. */
  texts: [string, number, string, number][];
  /**
   * This viewer thread's event-loop delay since the measurement window opened, p99 and max in ms:
   * a late loop delays every frame it reads, so the driver would measure its own lag.
   */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

export type WorkerReply =
  | { type: 'done'; seq: number }
  | { type: 'opened'; seq: number; ready: number; failed: number; firstError?: string }
  | { type: 'snapshot'; seq: number; snapshot: WorkerSnapshot };
