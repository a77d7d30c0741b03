import uWS from 'uWebSockets.js';
import { Redis } from 'ioredis';
import { createPlainUwsApp, createTickBatcher } from './plain-uws-app';

// Child process of the append fan-out benchmark: the floor for a gateway fed through Redis. The
// minimal uWebSockets.js app (plain-uws-app.ts) plus one Redis subscriber connection: a scope's
// channel (`<prefix>sync:<scope>`, the bus format) is joined when its first socket subscribes,
// and each message's events are framed as a `sync` frame by slicing the published JSON (no
// parse, no ordering, no checks), batched per scope and tick as the gateway batches, and handed
// to `app.publish`. Env: PORT (0 = any), REDIS_URL, REDIS_CHANNEL_PREFIX.

const prefix = `${process.env.REDIS_CHANNEL_PREFIX ?? ''}sync:`;
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
redis.on('error', (err) => process.stderr.write(`plain uWS + Redis: ${err.message}\n`));
const joined = new Set<string>();

// Joined before the subscribe is answered, as the gateway does (without waiting for Redis).
const app = createPlainUwsApp({
  onSubscribe(scope) {
    if (joined.has(scope)) return;
    joined.add(scope);
    void redis.subscribe(prefix + scope);
  },
});

const EVENTS = '"events":[';
const enqueue = createTickBatcher(app);
redis.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
  const scope = channel.toString('latin1', Buffer.byteLength(prefix));
  const text = payload.toString('utf8');
  // `{"scope":"…","events":[{"id":N,…},…]}` from one publisher, one event per message.
  const start = text.indexOf(EVENTS) + EVENTS.length;
  const events = text.slice(start, text.length - 2);
  const lastId = text.slice(start + 6, text.indexOf(',', start));
  enqueue(scope, events, lastId);
});

app.listen(Number(process.env.PORT ?? 0), (socket) => {
  if (!socket) {
    process.stderr.write('plain uWS + Redis server could not listen\n');
    process.exit(1);
  }
  process.send?.({ type: 'ready', port: uWS.us_socket_local_port(socket) });
});
process.on('disconnect', () => process.exit(0));
