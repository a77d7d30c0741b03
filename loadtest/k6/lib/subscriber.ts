import { check } from 'k6';
import { setTimeout } from 'k6/timers';
import { WebSocket } from 'k6/websockets';
import { WS_URL } from './config.ts';
import {
  deliveryMs,
  errorFrames,
  eventsDuplicated,
  eventsLost,
  eventsReceived,
  wsErrors,
} from './sync-metrics.ts';

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
 * `k6/websockets` with the token in the `Authorization` header, never in the URL: k6 tags every
 * sample with its `url`, so a token there would be written into every output and make one time
 * series per VU. The `name` tag groups all sockets under one series.
 */
export function openSocket(token: string): WebSocket {
  return new WebSocket(`${WS_URL}/sync`, null, {
    headers: { Authorization: `Bearer ${token}` },
    tags: { name: 'sync_ws' },
  });
}

/**
 * One WebSocket session on /sync: subscribes each scope (from its cursor when known), checks
 * that ids arrive as cursor+1, cursor+2, ... and times each event from its commit to receipt.
 * Resolves when the socket closes (`holdMs` passed or `onSync` asked to stop). It does not block
 * the VU, so one VU can hold many sessions at once (`Promise.all`), which is what makes tens of
 * thousands of sockets practical (the legacy `k6/ws` held one socket per VU).
 */
export function subscribe(options: SubscribeOptions): Promise<void> {
  return new Promise((resolve) => {
    const socket = openSocket(options.token);
    let opened = false;
    socket.onopen = () => {
      opened = true;
      for (const scope of options.scopes) {
        const cursor = options.cursors[scope];
        const frame =
          cursor === undefined
            ? { type: 'subscribe', scope }
            : { type: 'subscribe', scope, lastSyncId: cursor };
        socket.send(JSON.stringify(frame));
      }
      setTimeout(() => socket.close(), options.holdMs);
    };
    socket.onmessage = (event) => {
      const received = Date.now();
      const frame = JSON.parse(String(event?.data)) as Frame;
      const scope = frame.scope ?? '';
      switch (frame.type) {
        case 'bootstrap':
          options.cursors[scope] = frame.lastSyncId ?? 0;
          return;
        case 'sync': {
          let cursor = options.cursors[scope] ?? 0;
          for (const e of frame.events ?? []) {
            if (e.id <= cursor) {
              eventsDuplicated.add(1);
              continue;
            }
            if (e.id > cursor + 1) eventsLost.add(e.id - cursor - 1);
            cursor = e.id;
            eventsReceived.add(1);
            deliveryMs.add(received - Date.parse(e.created_at));
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
    };
    socket.onerror = () => {
      wsErrors.add(1);
    };
    socket.onclose = () => {
      check(opened, { 'websocket opened': (o) => o });
      resolve();
    };
  });
}
