/**
 * What the console exposes on `window.__SYNC_DEBUG__` for people poking at it from devtools and
 * for the browser test: counts of the frames the gateway sent, per type and per scope, and a way
 * to drop the live sockets (to simulate a network cut that the browser itself does not report).
 */
export interface SyncDebug {
  /** Frames received, by `type` (`bootstrap`, `sync`, `error`, `pong`, ...). */
  frames: Record<string, number>;
  /** Bootstrap frames received, by scope. A resumed scope does not get one. */
  bootstraps: Record<string, number>;
  /** Sync events received (summed over `sync` frames). */
  events: number;
  socketsOpened: number;
  /** Sockets currently open or connecting. */
  openSockets(): number;
  /** Closes every live socket, as a dropped connection would. */
  closeSockets(code?: number, reason?: string): number;
  /** Anything else the app wants to expose (the client, the build's config...). */
  [extra: string]: unknown;
}

/** The part of the WebSocket constructor the client needs. */
export type WebSocketConstructor = typeof WebSocket;

/**
 * A WebSocket subclass that counts incoming frames into `debug`. It is handed to the sync
 * client as its `WebSocket` option, so the client itself needs no instrumentation.
 */
export function createDebugWebSocket(
  Base: WebSocketConstructor,
  debug: Pick<SyncDebug, 'frames' | 'bootstraps' | 'events' | 'socketsOpened'> & { sockets: Set<WebSocket> },
): WebSocketConstructor {
  class DebugWebSocket extends Base {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols);
      debug.socketsOpened++;
      debug.sockets.add(this);
      this.addEventListener('close', () => debug.sockets.delete(this));
      this.addEventListener('message', (event: MessageEvent) => {
        if (typeof event.data !== 'string') return;
        const frame = parseFrameHead(event.data);
        if (!frame) return;
        debug.frames[frame.type] = (debug.frames[frame.type] ?? 0) + 1;
        if (frame.type === 'bootstrap' && frame.scope) {
          debug.bootstraps[frame.scope] = (debug.bootstraps[frame.scope] ?? 0) + 1;
        }
        if (frame.type === 'sync') debug.events += frame.events;
      });
    }
  }
  return DebugWebSocket;
}

/** Creates the debug object and the instrumented WebSocket class that feeds it. */
export function createSyncDebug(Base: WebSocketConstructor): {
  debug: SyncDebug;
  WebSocket: WebSocketConstructor;
} {
  const sockets = new Set<WebSocket>();
  const debug: SyncDebug & { sockets: Set<WebSocket> } = {
    frames: {},
    bootstraps: {},
    events: 0,
    socketsOpened: 0,
    sockets,
    openSockets: () => sockets.size,
    closeSockets(code = 4000, reason = 'closed from __SYNC_DEBUG__') {
      const count = sockets.size;
      for (const socket of [...sockets]) socket.close(code, reason);
      return count;
    },
  };
  return { debug, WebSocket: createDebugWebSocket(Base, debug) };
}

function parseFrameHead(data: string): { type: string; scope?: string; events: number } | null {
  try {
    const frame = JSON.parse(data) as { type?: unknown; scope?: unknown; events?: unknown };
    if (typeof frame.type !== 'string') return null;
    return {
      type: frame.type,
      ...(typeof frame.scope === 'string' ? { scope: frame.scope } : {}),
      events: Array.isArray(frame.events) ? frame.events.length : 0,
    };
  } catch {
    return null;
  }
}
