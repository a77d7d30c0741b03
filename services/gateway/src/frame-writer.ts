import type { ServerFrame, SyncEvent, WsErrorCode } from '@openagents/sync-protocol';
import { eventJson } from './bus-message';
import { type ConnectionRegistry, type Socket, topicOf } from './connection-registry';
import type { HandlerFailed } from './handler-failure';
import type { GatewayMetrics } from './metrics';
import type { SlowConsumerPolicy } from './slow-consumer';
import { SEND_STATUS, type TemplatedApp } from './uws';

/** Frame kinds whose serialisation is shared between sockets (see `FrameWriter.serialise`). */
type SharedKind = 'bootstrap' | 'reset' | 'sync';

/**
 * Everything the gateway writes to sockets: one frame to one socket (`send`), and one ordered
 * batch of a scope to all its live sockets (`fanOut`). Frames are serialised once however many
 * sockets get them, and every write is followed by the slow-consumer check.
 */
export class FrameWriter {
  readonly #app: TemplatedApp;
  readonly #connections: ConnectionRegistry;
  readonly #metrics: GatewayMetrics;
  readonly #slowConsumers: SlowConsumerPolicy;
  readonly #failed: HandlerFailed;
  /**
   * Whether frames are sent with uWS's compress flag (WS_COMPRESSION on). uWS compresses per
   * socket, and only for sockets that negotiated permessage-deflate; others get the plain bytes.
   */
  readonly #compress: boolean;
  /**
   * Serialised catch-up frames by the shared object they were made from (a snapshot or a delta
   * page handed to many subscribers by single-flight and the resume cache). Weak: an entry lives
   * as long as its page does.
   */
  readonly #shared: Record<SharedKind, WeakMap<object, Buffer>> = {
    bootstrap: new WeakMap(),
    reset: new WeakMap(),
    sync: new WeakMap(),
  };

  constructor(deps: {
    app: TemplatedApp;
    connections: ConnectionRegistry;
    metrics: GatewayMetrics;
    slowConsumers: SlowConsumerPolicy;
    failed: HandlerFailed;
    compress?: boolean;
  }) {
    this.#app = deps.app;
    this.#connections = deps.connections;
    this.#metrics = deps.metrics;
    this.#slowConsumers = deps.slowConsumers;
    this.#failed = deps.failed;
    this.#compress = deps.compress ?? false;
  }

  /** The frame's bytes; with a `shareKey`, made once per key for catch-up frames. */
  serialise(frame: ServerFrame, shareKey: object | undefined): Buffer {
    const kind = frame.type === 'bootstrap' ? (frame.reset ? 'reset' : 'bootstrap') : frame.type;
    if (!shareKey || (kind !== 'sync' && kind !== 'bootstrap' && kind !== 'reset')) {
      return Buffer.from(JSON.stringify(frame));
    }
    let payload = this.#shared[kind].get(shareKey);
    if (!payload) {
      payload = Buffer.from(JSON.stringify(frame));
      this.#shared[kind].set(shareKey, payload);
    }
    return payload;
  }

  /**
   * Writes one frame to one socket; false when the socket is gone or was closed as too slow.
   * Never throws (subscriptions call it from promise chains): a frame that cannot be serialised
   * closes this socket with 1011, since its stream would otherwise have a hole.
   */
  send(ws: Socket, frame: ServerFrame, shareKey?: object): boolean {
    if (!this.#connections.isOpen(ws)) return false;
    try {
      return this.#write(ws, frame, shareKey);
    } catch (err) {
      this.#failed('serialise', err, ws, true);
      return false;
    }
  }

  sendError(ws: Socket, code: WsErrorCode, message: string, scope?: string): void {
    this.#metrics.frameErrors.inc({ code });
    this.send(ws, { type: 'error', code, message, ...(scope === undefined ? {} : { scope }) });
  }

  /**
   * Fan-out of one ordered batch: serialised once, published once on the scope's topic (uWS
   * writes it to every subscribed socket in C++), then the live sockets' send buffers are
   * checked so a client that stopped reading is closed (1013) instead of growing without bound.
   */
  fanOut(scope: string, events: readonly SyncEvent[]): void {
    const live = this.#connections.live(scope);
    if (!live || live.size === 0) return;
    const last = events[events.length - 1]!;
    let payload: string;
    try {
      payload = syncFrame(scope, events, last.id);
    } catch (err) {
      // Not deliverable live: every live socket of the scope would miss it, so each one is
      // closed (1011) and resumes from its cursor through the log.
      for (const ws of [...live]) this.#failed('fanout', err, ws, true);
      return;
    }
    // A string, not a Buffer: uWS copies it once into the sockets' buffers, and nothing is left
    // for the garbage collector per frame.
    this.#app.publish(topicOf(scope), payload, false, this.#compress);
    const n = live.size;
    // Plain numbers, added to the counters at scrape time (metrics.ts, LiveTally).
    const tally = this.#metrics.tally;
    tally.syncFrames += n;
    tally.syncBytes += Buffer.byteLength(payload) * n;
    tally.syncEvents += events.length * n;
    const now = Date.now();
    for (const e of events) {
      const committed = Date.parse(e.created_at);
      if (Number.isFinite(committed))
        this.#metrics.fanoutLatency.observe(Math.max(0, now - committed) / 1000);
    }
    for (const ws of live) this.#slowConsumers.check(ws);
  }

  #write(ws: Socket, frame: ServerFrame, shareKey?: object): boolean {
    const payload = this.serialise(frame, shareKey);
    // Every frame sent here but pong/error/subscribed is catch-up (live events go through fanOut).
    if (frame.type === 'bootstrap' || frame.type === 'sync') ws.getUserData().catchUpBytes += payload.length;
    const status = ws.send(payload, false, this.#compress);
    this.#metrics.framesSent.inc({ type: frame.type });
    this.#metrics.bytesSent.inc(payload.length);
    if (frame.type === 'sync') this.#metrics.eventsDelivered.inc(frame.events.length);
    if (status === SEND_STATUS.dropped) {
      this.#slowConsumers.closeDropped(ws);
      return false;
    }
    this.#slowConsumers.check(ws);
    return this.#connections.isOpen(ws);
  }
}

/**
 * The `sync` frame of a fan-out batch: what JSON.stringify gives for `{ type: 'sync', scope,
 * events, latestSyncId }`, assembled from each event's JSON — the text an event arrived as on the
 * bus when it kept it (scope-stream.ts; byte for byte the same when the publisher serialised it
 * with JSON.stringify, as every publisher here does), else serialised here.
 */
export function syncFrame(scope: string, events: readonly SyncEvent[], latestSyncId: number): string {
  let json = eventJson(events[0]!);
  for (let i = 1; i < events.length; i++) json += `,${eventJson(events[i]!)}`;
  return `{"type":"sync","scope":${JSON.stringify(scope)},"events":[${json}],"latestSyncId":${latestSyncId}}`;
}
