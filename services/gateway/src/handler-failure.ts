import { CLOSE_CODES, type WsErrorCode } from '@openagents/sync-protocol';
import type { Logger } from '@openagents/sync-server-kit';
import type { ConnectionRegistry, Socket } from './connection-registry';
import type { GatewayMetrics } from './metrics';

/** Where an unexpected error was caught (the `where` label of sync_gateway_handler_errors_total). */
export type HandlerSite =
  | 'message'
  | 'upgrade'
  | 'open'
  | 'close'
  | 'drain'
  | 'expiry'
  | 'bus'
  | 'fanout'
  | 'serialise'
  | 'http';

/**
 * Reports an unexpected error. With a socket: answers it with an `internal` error frame, or
 * closes it with 1011 when `close` (its stream may have a hole).
 */
export type HandlerFailed = (where: HandlerSite, err: unknown, ws?: Socket, close?: boolean) => void;

/**
 * Every entry point (uWS callbacks, bus callbacks, timers) ends in a catch that calls this: an
 * unexpected error is counted, logged with the connection id (never its token) and costs at
 * most that connection — a throw out of any uWS or bus callback would end the whole process.
 */
export function handlerFailure(deps: {
  connections: ConnectionRegistry;
  metrics: GatewayMetrics;
  log: Logger;
  sendError: (ws: Socket, code: WsErrorCode, message: string) => void;
}): HandlerFailed {
  const { connections, metrics, log } = deps;
  return (where, err, ws, close = false) => {
    metrics.handlerErrors.inc({ where });
    let conn: number | undefined;
    if (ws && connections.isOpen(ws)) {
      try {
        conn = ws.getUserData().id;
      } catch {}
    }
    log.error({ where, conn, err: err instanceof Error ? err.message : String(err) }, 'handler failed');
    if (!ws || !connections.isOpen(ws)) return;
    try {
      if (close) ws.end(CLOSE_CODES.internalError, 'internal error; reconnect and resume');
      else deps.sendError(ws, 'internal', 'The frame could not be handled (internal error)');
    } catch {}
  };
}
