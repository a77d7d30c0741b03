import { CLOSE_CODES } from '@openagents/sync-protocol';
import type { Logger } from '@openagents/sync-server-kit';
import type { ConnectionRegistry, Socket, UserData } from './connection-registry';
import type { GatewayMetrics } from './metrics';

/**
 * uWS's own send-buffer limit: a last resort far above MAX_BACKPRESSURE_BYTES. Past it uWS would
 * drop messages, and closing the socket is then the only safe answer (a dropped message must
 * never be followed by a later one), hence `closeOnBackpressureLimit`.
 */
export function uwsBackpressureLimit(maxBackpressureBytes: number): number {
  return Math.max(64 * 1024 * 1024, maxBackpressureBytes * 8);
}

/**
 * What happens to a client that does not read: after every send and every fan-out its send
 * buffer is checked, and past MAX_BACKPRESSURE_BYTES (plus what catch-up frames earned it) it is
 * closed with 1013 — it resumes from its cursor — instead of growing the buffer without bound.
 * Paged bootstraps wait here for the buffer to drain to half the limit before their next page.
 */
export class SlowConsumerPolicy {
  readonly #connections: ConnectionRegistry;
  readonly #metrics: GatewayMetrics;
  readonly #log: Logger;
  readonly #maxBytes: number;
  /** A paged bootstrap sends its next page once the buffer is back under this (half the limit). */
  readonly #pageResumeBytes: number;

  constructor(deps: {
    connections: ConnectionRegistry;
    metrics: GatewayMetrics;
    log: Logger;
    maxBackpressureBytes: number;
  }) {
    this.#connections = deps.connections;
    this.#metrics = deps.metrics;
    this.#log = deps.log;
    this.#maxBytes = deps.maxBackpressureBytes;
    this.#pageResumeBytes = Math.floor(deps.maxBackpressureBytes / 2);
  }

  /** Closes the socket (1013) when its buffer is over the limit plus its catch-up allowance. */
  check(ws: Socket): void {
    if (!this.#connections.isOpen(ws)) return;
    const ud = ws.getUserData();
    if (ws.getBufferedAmount() <= this.#maxBytes + ud.catchUpBytes) return;
    this.#metrics.slowConsumerCloses.inc();
    this.#log.info({ conn: ud.id, buffered: ws.getBufferedAmount() }, 'closing slow consumer');
    ws.end(CLOSE_CODES.tryAgainLater, 'too slow: resume from your cursor');
  }

  /** uWS refused a message (past its hard cap): the stream has a hole now, so the socket must go. */
  closeDropped(ws: Socket): void {
    if (!this.#connections.isOpen(ws)) return;
    this.#metrics.slowConsumerCloses.inc();
    ws.end(CLOSE_CODES.tryAgainLater, 'too slow: resume from your cursor');
  }

  /** uWS's `drain`: the client is reading again. */
  drained(ws: Socket): void {
    const ud = ws.getUserData();
    // Once its buffer is back under the limit, a past catch-up no longer earns it extra room.
    if (ws.getBufferedAmount() <= this.#maxBytes) ud.catchUpBytes = 0;
    if (ud.writableWaiters && ws.getBufferedAmount() <= this.#pageResumeBytes) wakeWriters(ud);
  }

  /** Resolves once the buffer has room for another bootstrap page, or the socket is gone. */
  writable(ws: Socket, ud: UserData): Promise<void> {
    return new Promise<void>((resolve) => {
      if (ud.closed || ws.getBufferedAmount() <= this.#pageResumeBytes) resolve();
      else if (ud.writableWaiters) ud.writableWaiters.push(resolve);
      else ud.writableWaiters = [resolve];
    });
  }
}

/** Lets every waiting bootstrap go on (the buffer drained, or the socket closed). */
export function wakeWriters(ud: UserData): void {
  const waiters = ud.writableWaiters;
  ud.writableWaiters = undefined;
  if (waiters) for (const wake of waiters) wake();
}
