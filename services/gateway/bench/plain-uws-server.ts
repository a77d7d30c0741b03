import uWS from 'uWebSockets.js';
import { Producer, serveProducerIpc } from './fanout-events';

// Child process of the fan-out benchmark: the upper bound. A minimal uWebSockets.js server with
// the same wire frames as the gateway, where the publisher is in-process: each event is framed
// once and handed to `app.publish` on the scope's topic. No auth, no bus, no ordering checks, no
// per-connection state beyond the topic. Env: PORT (0 = any).

const app = uWS.App();
app.ws('/sync', {
  maxPayloadLength: 64 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  maxBackpressure: 64 * 1024 * 1024,
  message(ws, message) {
    const frame = JSON.parse(Buffer.from(message).toString('utf8')) as { type: string; scope?: string };
    if (frame.type !== 'subscribe' || !frame.scope) return;
    ws.subscribe(`scope:${frame.scope}`);
    ws.send(`{"type":"bootstrap","scope":"${frame.scope}","models":{},"lastSyncId":0}`);
    ws.send(`{"type":"subscribed","scope":"${frame.scope}","lastSyncId":0}`);
  },
});

const producer = new Producer((event) => {
  app.publish(
    `scope:${event.scope}`,
    `{"type":"sync","scope":"${event.scope}","events":[${event.json}],"latestSyncId":${event.id}}`,
    false,
  );
});
serveProducerIpc(producer, () => undefined);

app.listen(Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('plain uWS server could not listen\n');
    process.exit(1);
  }
  process.send?.({ type: 'ready', port: uWS.us_socket_local_port(socket) });
});
