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

/**
 * The gateway's batching policy for the plain servers: events (their JSON) that arrive in one
 * tick go out as one `sync` frame per scope on the scope's topic, so neither side wins on frame
 * count alone. Frames are Buffers, as in the gateway.
 */
export function createTickBatcher(
  app: uWS.TemplatedApp,
): (scope: string, json: string, id: number | string) => void {
  const pending = new Map<string, { events: string[]; lastId: number | string }>();
  let flushScheduled = false;
  const flush = () => {
    flushScheduled = false;
    for (const [scope, batch] of pending) {
      app.publish(
        `scope:${scope}`,
        Buffer.from(
          `{"type":"sync","scope":"${scope}","events":[${batch.events.join(',')}],"latestSyncId":${batch.lastId}}`,
        ),
        false,
      );
    }
    pending.clear();
  };
  return (scope, json, id) => {
    const batch = pending.get(scope);
    if (batch) {
      batch.events.push(json);
      batch.lastId = id;
    } else pending.set(scope, { events: [json], lastId: id });
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  };
}
