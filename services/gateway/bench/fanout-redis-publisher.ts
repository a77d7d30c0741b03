import { Redis } from 'ioredis';
import { Producer, serveProducerIpc } from './fanout-events';

// Child process of the fan-out benchmark: publishes pre-built events on the Redis channels the
// gateway listens to, in the bus format of packages/server-kit/src/redis-bus.ts — channel
// `<prefix>sync:<scope>`, payload `{"scope", "events"}` — exactly what a mutation worker
// publishes after a commit. One event per message, as one write per transaction would.
// Env: REDIS_URL, REDIS_CHANNEL_PREFIX.

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  enableAutoPipelining: true,
  maxRetriesPerRequest: 1,
});
redis.on('error', (err) => process.stderr.write(`publisher: ${err.message}\n`));
const channelPrefix = `${process.env.REDIS_CHANNEL_PREFIX ?? ''}sync:`;

const producer = new Producer((event) => {
  void redis.publish(channelPrefix + event.scope, `{"scope":"${event.scope}","events":[${event.json}]}`);
});
serveProducerIpc(producer, () => redis.quit().then(() => undefined));
await redis.ping();
process.send?.({ type: 'ready' });
