import uWS from 'uWebSockets.js';

/**
 * The benchmarks' upper bound: a minimal uWebSockets.js app with the gateway's wire frames and
 * nothing else. A `subscribe` joins the scope's topic and is answered with an empty bootstrap at
 * 0 and `subscribed`; no auth, no bus, no ordering checks, no per-connection state beyond the
 * topic. `onOpen`/`onClose` let a caller count the connections; `onSubscribe` runs before a
 * subscribe is answered (the Redis-fed variant joins the scope's channel there).
 */
export function createPlainUwsApp(
  hooks: { onOpen?: () => void; onClose?: () => void; onSubscribe?: (scope: string) => void } = {},
): uWS.TemplatedApp {
  const app = uWS.App();
  app.ws('/sync', {
    maxPayloadLength: 64 * 1024,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    maxBackpressure: 64 * 1024 * 1024,
    open: () => hooks.onOpen?.(),
    close: () => hooks.onClose?.(),
    message(ws, message) {
      const frame = JSON.parse(Buffer.from(message).toString('utf8')) as { type: string; scope?: string };
      if (frame.type !== 'subscribe' || !frame.scope) return;
      hooks.onSubscribe?.(frame.scope);
      ws.subscribe(`scope:${frame.scope}`);
      ws.send(`{"type":"bootstrap","scope":"${frame.scope}","models":{},"lastSyncId":0}`);
      ws.send(`{"type":"subscribed","scope":"${frame.scope}","lastSyncId":0}`);
    },
  });
  return app;
}
