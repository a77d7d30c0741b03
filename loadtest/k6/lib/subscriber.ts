import { check } from 'k6';
import ws from 'k6/ws';
import { WS_URL } from './config.ts';
import { deliveryMs, errorFrames, eventsDuplicated, eventsLost, eventsReceived } from './sync-metrics.ts';

/** A scope's cursor: the id of the last event applied (contract: lastSyncId). */
export type Cursors = Record<string, number>;

export interface SubscribeOptions {
  token: string;
  scopes: string[];
  /** Cursors to resume from; scopes missing here are bootstrapped. Updated in place. */
  cursors: Cursors;
  /** How long to stay connected. */
  holdMs: number;
  /** Called after every `sync` frame; return true to close early (e.g. caught up). */
  onSync?: (cursors: Cursors) => boolean;
}

interface Frame {
  type: string;
  scope?: string;
  lastSyncId?: number;
  events?: { id: number; created_at: string }[];
  code?: string;
  message?: string;
}

/**
 * One WebSocket session on /sync: subscribes each scope (from its cursor when known), checks
 * that ids arrive as cursor+1, cursor+2, ... and times each event from its commit to receipt.
 * Blocks the VU until `holdMs` passed or `onSync` asked to stop.
 */
export function subscribe(options: SubscribeOptions): void {
  const url = `${WS_URL}/sync?token=${encodeURIComponent(options.token)}`;
  const res = ws.connect(url, { tags: { name: 'sync_ws' } }, (socket) => {
    socket.on('open', () => {
      for (const scope of options.scopes) {
        const cursor = options.cursors[scope];
        const frame =
          cursor === undefined
            ? { type: 'subscribe', scope }
            : { type: 'subscribe', scope, lastSyncId: cursor };
        socket.send(JSON.stringify(frame));
      }
      socket.setTimeout(() => socket.close(), options.holdMs);
    });
    socket.on('message', (text) => {
      const received = Date.now();
      const frame = JSON.parse(text) as Frame;
      const scope = frame.scope ?? '';
      switch (frame.type) {
        case 'bootstrap':
          options.cursors[scope] = frame.lastSyncId ?? 0;
          return;
        case 'sync': {
          let cursor = options.cursors[scope] ?? 0;
          for (const event of frame.events ?? []) {
            if (event.id <= cursor) {
              eventsDuplicated.add(1);
              continue;
            }
            if (event.id > cursor + 1) eventsLost.add(event.id - cursor - 1);
            cursor = event.id;
            eventsReceived.add(1);
            deliveryMs.add(received - Date.parse(event.created_at));
          }
          options.cursors[scope] = cursor;
          if (options.onSync?.(options.cursors)) socket.close();
          return;
        }
        case 'error':
          errorFrames.add(1, { code: frame.code ?? 'unknown' });
          return;
        default:
          return;
      }
    });
  });
  check(res, { 'websocket upgraded (101)': (r) => r !== undefined && r.status === 101 });
}
