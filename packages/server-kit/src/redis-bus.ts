import { Redis } from 'ioredis';
import { type Bus, type BusHandler, type BusMessage, HandlerTable } from './bus';
import type { Logger } from './logger';
import { createPublishDeadline } from './publish-deadline';
import { createRedisClusterBus } from './redis-cluster-bus';
import { parseRedisTarget, redisRetryDelay } from './redis-target';

export interface RedisBusOptions {
  /** `redis://` / `rediss://` for one server; `redis+cluster://host:port,host:port` for a cluster. */
  url: string;
  /** Treat a `redis://` URL as the seed of a cluster (REDIS_CLUSTER=true). */
  cluster?: boolean;
  /** Prefix of every channel name; lets several deployments (or test runs) share one Redis. */
  channelPrefix?: string;
  log?: Logger;
  /** How long a publish may take before it is counted as failed, in ms. */
  publishTimeoutMs?: number;
}

/**
 * The bus over Redis: a cluster (see `parseRedisTarget`) gets the sharded pub/sub bus of
 * `createRedisClusterBus`, one server the bus below.
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const target = parseRedisTarget(options.url, options.cluster);
  if (target.kind === 'single') return createSingleRedisBus(options);
  return createRedisClusterBus({
    target,
    ...(options.channelPrefix === undefined ? {} : { channelPrefix: options.channelPrefix }),
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.publishTimeoutMs === undefined ? {} : { publishTimeoutMs: options.publishTimeoutMs }),
  });
}

/**
 * The bus over one Redis's pub/sub: channel `<prefix>sync:<scope>` per scope. Two connections, since a
 * subscribed Redis connection cannot publish. The publisher never queues while disconnected (a
 * publish fails fast and the write still succeeds: the log is the truth). The subscriber
 * reconnects forever. After a reconnect we re-join every channel ourselves and report 'up' only
 * once Redis has confirmed the SUBSCRIBE, so the gateway's re-read of the log (for what was
 * published while it was away) cannot start before the live path is back: ioredis's own
 * autoResubscribe emits 'ready' before its SUBSCRIBE is confirmed, which left a window where a
 * publish was neither received nor covered by that re-read.
 */
function createSingleRedisBus(options: RedisBusOptions): Bus {
  const prefix = `${options.channelPrefix ?? ''}sync:`;
  const table = new HandlerTable();
  const retryStrategy = redisRetryDelay;

  // No `commandTimeout`: it arms a timer per command, and a worker streaming hundreds of replies
  // publishes hundreds of messages per commit. `withinDeadline` gives the publishes issued in one
  // turn (one commit's, written to Redis in one pipelined write) one timer between them.
  const publisher = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy,
    lazyConnect: false,
  });
  const subscriber = new Redis(options.url, {
    autoResubscribe: false,
    maxRetriesPerRequest: null,
    retryStrategy,
  });

  const withinDeadline = createPublishDeadline(options.publishTimeoutMs ?? 1000);
  let publisherUp = false;
  let subscriberUp = false;
  let wasDown = false;
  let closed = false;

  publisher.on('ready', () => {
    publisherUp = true;
  });
  publisher.on('close', () => {
    publisherUp = false;
  });
  publisher.on('error', (err) => options.log?.debug({ err: err.message }, 'redis publisher error'));
  subscriber.on('error', (err) => options.log?.debug({ err: err.message }, 'redis subscriber error'));

  const rejoinChannels = async () => {
    const channels = table.scopes().map((scope) => prefix + scope);
    try {
      if (channels.length > 0) await subscriber.subscribe(...channels);
    } catch (err) {
      // Lost again before Redis answered: the next 'ready' tries again.
      options.log?.debug({ err: (err as Error).message }, 'redis resubscribe failed');
      return;
    }
    if (subscriber.status !== 'ready' || closed) return;
    subscriberUp = true;
    wasDown = false;
    options.log?.info({ scopes: channels.length }, 'redis subscription restored');
    table.emitStatus('up');
  };

  subscriber.on('ready', () => {
    if (wasDown) void rejoinChannels();
    else subscriberUp = true;
  });
  subscriber.on('close', () => {
    if (subscriberUp && !closed) {
      options.log?.warn('redis subscription lost');
      table.emitStatus('down');
    }
    subscriberUp = false;
    wasDown = true;
  });

  subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
    let message: BusMessage;
    const raw = payload.toString('utf8');
    try {
      message = JSON.parse(raw) as BusMessage;
    } catch {
      options.log?.warn({ channel: channel.toString() }, 'dropped malformed bus message');
      return;
    }
    table.dispatch(message, raw);
  });

  return {
    kind: 'redis',
    publish(message: BusMessage) {
      let sent: Promise<unknown>;
      try {
        sent = publisher.publish(prefix + message.scope, JSON.stringify(message));
      } catch (err) {
        return Promise.reject(err);
      }
      return withinDeadline(sent);
    },
    async subscribe(scope: string, handler: BusHandler) {
      if (table.add(scope, handler)) {
        try {
          await subscriber.subscribe(prefix + scope);
        } catch (err) {
          table.remove(scope, handler);
          throw err;
        }
      }
      return async () => {
        if (table.remove(scope, handler) && !closed) {
          await subscriber.unsubscribe(prefix + scope).catch(() => {});
        }
      };
    },
    onStatus: (listener) => table.onStatus(listener),
    isHealthy: () => publisherUp && subscriberUp,
    activeScopes: () => table.size,
    async close() {
      closed = true;
      publisher.disconnect();
      subscriber.disconnect();
    },
  };
}
