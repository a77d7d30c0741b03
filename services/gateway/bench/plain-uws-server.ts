import uWS from 'uWebSockets.js';
import { Producer, serveProducerIpc } from './fanout-events';
import { createPlainUwsApp } from './plain-uws-app';

// Child process of the fan-out benchmark: the upper bound. A minimal uWebSockets.js server with
// the same wire frames as the gateway, where the publisher is in-process: events are framed once
// per scope and tick and handed to `app.publish` on the scope's topic. No auth, no bus, no
// ordering checks, no per-connection state beyond the topic. Env: PORT (0 = any).

const app = createPlainUwsApp();

// Same batching policy as the gateway's fan-out: what arrives in one tick goes out as one frame
// per scope, so neither side wins on frame count alone. Frames are Buffers, as in the gateway.
const pending = new Map<string, { events: string[]; lastId: number }>();
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
const producer = new Producer((event) => {
  const batch = pending.get(event.scope);
  if (batch) {
    batch.events.push(event.json);
    batch.lastId = event.id;
  } else pending.set(event.scope, { events: [event.json], lastId: event.id });
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
});
serveProducerIpc(producer, () => undefined);

app.listen(Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('plain uWS server could not listen\n');
    process.exit(1);
  }
  process.send?.({ type: 'ready', port: uWS.us_socket_local_port(socket) });
});
