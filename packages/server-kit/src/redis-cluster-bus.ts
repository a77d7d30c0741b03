import { backoff } from '@openagents/sync-protocol';
import calculateSlot from 'cluster-key-slot';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { type Bus, type BusHandler, type BusMessage, HandlerTable } from './bus';
import type { Logger } from './logger';
import { type RedisTarget, redisRetryDelay } from './redis-target';

export interface RedisClusterBusOptions {
  target: Extract<RedisTarget, { kind: 'cluster' }>;
  /** Prefix of every channel name; lets several deployments (or test runs) share one cluster. */
  channelPrefix?: string;
  log?: Logger;
  /** How long a publish may take before it is counted as failed, in ms. */
  publishTimeoutMs?: number;
  /**
   * How often the slot map is re-read, in ms. A channel whose slot moved (resharding, a manual
   * failover) is followed to its new owner at the latest this long after the move.
   */
  slotsRefreshIntervalMs?: number;
}

/** A connection to one master holding the sharded subscriptions of the slots it serves. */
interface Shard {
  readonly key: string;
  readonly redis: Redis;
  /** Channels whose SSUBSCRIBE this master confirmed on this connection. */
  readonly channels: Set<string>;
  /** Rejects when the connection is given up; pending SSUBSCRIBEs race against it. */
  readonly lost: Promise<never>;
  readonly markLost: (reason: Error) => void;
}

interface Placement {
  shard: Shard;
  slot: number;
}

/** Bounds of the jittered delay before a failed re-subscribe pass runs again. */
const RETRY_FIRST_BOUND_MS = 200;
const RETRY_MAX_MS = 1000;

/**
 * The bus over a Redis Cluster with sharded pub/sub: a worker publishes with SPUBLISH, which the
 * cluster client routes to the master owning the channel's slot; a gateway holds one subscriber
 * connection per master and SSUBSCRIBEs each channel on the master that owns it. Each scope is one
 * channel, hence one slot, so scopes spread over the shards and no message crosses the cluster bus
 * (classic PUBLISH is broadcast to every node, so one cluster is no faster than one Redis).
 *
 * ioredis can route SSUBSCRIBE itself (`shardedSubscribers`), but it re-subscribes after a
 * failover without waiting for the answer and swallows the failures, so it cannot say when the
 * live path is whole again. Here placement is ours: a channel counts as subscribed only once its
 * owner confirmed the SSUBSCRIBE. When a subscriber connection drops (a master died) or a slot
 * moves to another master, the bus reports 'down', looks the owners up again (retrying with
 * backoff until the replica has been promoted), re-subscribes every channel there and reports
 * 'up' only after every one of them is confirmed, so the gateway's re-read of the log starts when
 * nothing published from then on can be missed.
 */
export function createRedisClusterBus(options: RedisClusterBusOptions): Bus {
  const { target, log } = options;
  const prefix = `${options.channelPrefix ?? ''}sync:`;
  const publishTimeoutMs = options.publishTimeoutMs ?? 1000;
  const table = new HandlerTable();

  const nodeOptions: RedisOptions = {
    connectTimeout: 2000,
    ...(target.tls ? { tls: {} } : {}),
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
  };
  const clusterOptions: ClusterOptions = {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    slotsRefreshInterval: options.slotsRefreshIntervalMs ?? 5000,
    clusterRetryStrategy: redisRetryDelay,
    redisOptions: { ...nodeOptions, maxRetriesPerRequest: 1, commandTimeout: publishTimeoutMs },
    // Managed clusters with TLS (ElastiCache) present certificates for the names they announce;
    // resolving them to IPs first would fail the certificate check.
    ...(target.tls ? { dnsLookup: (address, callback) => callback(null, address) } : {}),
  };
  const cluster = new Cluster(target.seeds, clusterOptions);

  const shards = new Map<string, Shard>();
  const placed = new Map<string, Placement>();
  const waiters = new Map<string, (() => void)[]>();
  let clusterReady = false;
  /** A confirmed subscription was lost and not every channel is placed again yet. */
  let degraded = false;
  let reportedDown = false;
  let closed = false;
  let reconciling = false;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const scopeOf = (channel: string) => channel.slice(prefix.length);
  const ownerOf = (slot: number): string | undefined => cluster.slots[slot]?.[0];

  const markDegraded = () => {
    if (degraded) return;
    degraded = true;
    if (!reportedDown) {
      reportedDown = true;
      log?.warn('redis cluster subscription lost');
      table.emitStatus('down');
    }
  };

  const unplace = (channel: string) => {
    const placement = placed.get(channel);
    if (!placement) return;
    placed.delete(channel);
    placement.shard.channels.delete(channel);
  };

  /** Gives a subscriber connection up: its channels must be placed again (on whoever owns them now). */
  const dropShard = (shard: Shard, reason: string) => {
    if (shards.get(shard.key) !== shard) return;
    shards.delete(shard.key);
    shard.markLost(new Error(`subscriber connection to ${shard.key} ${reason}`));
    let lost = 0;
    for (const channel of [...shard.channels]) {
      unplace(channel);
      if (table.has(scopeOf(channel))) lost++;
    }
    shard.redis.disconnect();
    if (lost > 0 && !closed) {
      log?.debug({ node: shard.key, reason, channels: lost }, 'redis cluster shard subscriber lost');
      markDegraded();
    }
    scheduleRetry();
  };

  const shardFor = (key: string): Shard => {
    const existing = shards.get(key);
    if (existing) return existing;
    const colon = key.lastIndexOf(':');
    const redis = new Redis({
      ...nodeOptions,
      host: key.slice(0, colon),
      port: Number(key.slice(colon + 1)),
      autoResubscribe: false,
      // No reconnect of its own: after a drop the channel's owner is looked up again, since the
      // master that was here may be gone for good and a replica serve its slots.
      retryStrategy: () => null,
      maxRetriesPerRequest: null,
      // A lost answer (ioredis drops an SSUBSCRIBE answered with MOVED) must not wait forever.
      commandTimeout: 5000,
    });
    let markLost!: (reason: Error) => void;
    const lost = new Promise<never>((_, reject) => {
      markLost = reject;
    });
    lost.catch(() => {});
    const shard: Shard = { key, redis, channels: new Set(), lost, markLost };
    shards.set(key, shard);
    redis.on('smessageBuffer', (channel: Buffer, payload: Buffer) => {
      let message: BusMessage;
      const raw = payload.toString('utf8');
      try {
        message = JSON.parse(raw) as BusMessage;
      } catch {
        log?.warn({ channel: channel.toString() }, 'dropped malformed bus message');
        return;
      }
      table.dispatch(message, raw);
    });
    redis.on('close', () => dropShard(shard, 'closed'));
    // The slot of a channel we asked for is elsewhere: our slot map is stale.
    redis.on('moved', () => dropShard(shard, 'answered MOVED'));
    // Also where ioredis reports a server-sent SUNSUBSCRIBE (the slot moved away while this master
    // lives on, e.g. a manual failover): re-read the slot map now and move what moved, rather
    // than at the next periodic refresh.
    redis.on('error', (err) => {
      log?.debug({ node: key, err: err.message }, 'redis cluster subscriber error');
      scheduleRetry();
    });
    return shard;
  };

  /**
   * One pass: moves channels whose slot changed owner, subscribes every wanted channel not yet
   * placed. True when every wanted channel is placed on its owner.
   */
  const placeChannels = async (): Promise<boolean> => {
    let complete = true;
    for (const [channel, placement] of placed) {
      const owner = ownerOf(placement.slot);
      if (owner === placement.shard.key && shards.get(owner) === placement.shard) continue;
      unplace(channel);
      placement.shard.redis.sunsubscribe(channel).catch(() => {});
      if (table.has(scopeOf(channel))) markDegraded();
    }
    // SSUBSCRIBE takes channels of one slot only: one command per slot, grouped by owner.
    const groups = new Map<string, { owner: string; channels: string[] }>();
    for (const scope of table.scopes()) {
      const channel = prefix + scope;
      if (placed.has(channel)) continue;
      const slot = calculateSlot(channel);
      const owner = ownerOf(slot);
      if (!owner) {
        complete = false;
        continue;
      }
      const group = groups.get(`${owner}/${slot}`) ?? { owner, channels: [] };
      group.channels.push(channel);
      groups.set(`${owner}/${slot}`, group);
    }
    await Promise.all(
      [...groups.values()].map(async ({ owner, channels }) => {
        const shard = shardFor(owner);
        try {
          await Promise.race([shard.redis.ssubscribe(...channels), shard.lost]);
        } catch (err) {
          complete = false;
          log?.debug({ node: owner, err: (err as Error).message }, 'redis cluster ssubscribe failed');
          dropShard(shard, 'failed an SSUBSCRIBE');
          return;
        }
        if (shards.get(owner) !== shard || shard.redis.status !== 'ready') {
          complete = false;
          return;
        }
        for (const channel of channels) {
          if (!table.has(scopeOf(channel))) {
            shard.redis.sunsubscribe(channel).catch(() => {});
            continue;
          }
          placed.set(channel, { shard, slot: calculateSlot(channel) });
          shard.channels.add(channel);
          for (const resolve of waiters.get(channel) ?? []) resolve();
          waiters.delete(channel);
        }
      }),
    );
    return complete;
  };

  let failures = 0;
  const reconcile = async () => {
    if (reconciling) {
      again = true;
      return;
    }
    reconciling = true;
    try {
      do {
        again = false;
        if (closed || !clusterReady) return;
        if (!(await placeChannels())) {
          scheduleRetry();
          return;
        }
      } while (again);
      failures = 0;
      if (degraded && !closed) {
        degraded = false;
        log?.info({ scopes: placed.size }, 'redis cluster subscriptions restored');
      }
      if (reportedDown && clusterReady && !closed) {
        reportedDown = false;
        table.emitStatus('up');
      }
    } finally {
      reconciling = false;
      if (again) void reconcile();
    }
  };

  /** Retries a pass after a capped, doubling, jittered delay, with a fresh slot map (the replica may have taken over). */
  function scheduleRetry() {
    if (closed || retryTimer) return;
    failures++;
    const delay = backoff(failures - 1, { initialDelayMs: RETRY_FIRST_BOUND_MS, maxDelayMs: RETRY_MAX_MS });
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed) return;
      cluster.refreshSlotsCache(() => void reconcile());
    }, delay);
    retryTimer.unref();
  }

  cluster.on('ready', () => {
    clusterReady = true;
    void reconcile();
  });
  // After every slot map refresh (periodic, or on MOVED): follow channels whose slot moved.
  cluster.on('refresh', () => void reconcile());
  cluster.on('close', () => {
    clusterReady = false;
  });
  cluster.on('error', (err) => log?.debug({ err: err.message }, 'redis cluster error'));
  cluster.on('node error', (err, node) => log?.debug({ err: err.message, node }, 'redis cluster node error'));

  return {
    kind: 'redis',
    async publish(message: BusMessage) {
      if (closed) throw new Error('bus closed');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('redis cluster publish timed out')), publishTimeoutMs);
      });
      try {
        await Promise.race([cluster.spublish(prefix + message.scope, JSON.stringify(message)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async subscribe(scope: string, handler: BusHandler) {
      if (closed) throw new Error('bus closed');
      const channel = prefix + scope;
      table.add(scope, handler);
      if (!placed.has(channel)) {
        const confirmed = new Promise<void>((resolve) => {
          const list = waiters.get(channel) ?? [];
          list.push(resolve);
          waiters.set(channel, list);
        });
        void reconcile();
        await confirmed;
        if (closed) {
          table.remove(scope, handler);
          throw new Error('bus closed');
        }
      }
      return async () => {
        if (!table.remove(scope, handler) || closed) return;
        const placement = placed.get(channel);
        unplace(channel);
        // Nobody waits for this channel any more.
        for (const resolve of waiters.get(channel) ?? []) resolve();
        waiters.delete(channel);
        await placement?.shard.redis.sunsubscribe(channel).catch(() => {});
      };
    },
    onStatus: (listener) => table.onStatus(listener),
    isHealthy: () => clusterReady && !degraded && !closed,
    activeScopes: () => table.size,
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      for (const list of waiters.values()) for (const resolve of list) resolve();
      waiters.clear();
      for (const shard of [...shards.values()]) dropShard(shard, 'closed by us');
      cluster.disconnect();
    },
  };
}
