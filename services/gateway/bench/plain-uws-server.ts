import uWS from 'uWebSockets.js';
import { Producer, serveProducerIpc } from './fanout-events';
import { createPlainUwsApp, createTickBatcher } from './plain-uws-app';

// Child process of the fan-out benchmark: the upper bound. A minimal uWebSockets.js server with
// the same wire frames as the gateway, where the publisher is in-process: events are framed once
// per scope and tick and handed to `app.publish` on the scope's topic. No auth, no bus, no
// ordering checks, no per-connection state beyond the topic. Env: PORT (0 = any).

const app = createPlainUwsApp();

// Same batching policy as the gateway's fan-out (createTickBatcher).
const enqueue = createTickBatcher(app);
const producer = new Producer((event) => enqueue(event.scope, event.json, event.id));
serveProducerIpc(producer, () => undefined);

app.listen(Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('plain uWS server could not listen\n');
    process.exit(1);
  }
  process.send?.({ type: 'ready', port: uWS.us_socket_local_port(socket) });
});
