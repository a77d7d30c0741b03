import type { SyncEvent } from '@openagents/sync-protocol';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uniqueChannelPrefix } from '../../../test/support/redis';
import { type RedisCluster, startRedisCluster } from '../../../test/support/redis-cluster';
import type { Bus, BusMessage, BusStatus } from './bus';
import { createRedisBus } from './redis-bus';

const event = (id: number, scope: string): SyncEvent => ({
  id,
  scope,
  model: 'Agent',
  model_id: '00000000-0000-4000-8000-000000000001',
  action: 'insert',
  data: {},
  mutationId: null,
  created_at: new Date().toISOString(),
});

/** Resolves once `check()` holds (checked every 20 ms), or fails the test after `timeout`. */
const waitFor = (check: () => boolean, timeout = 10_000) =>
  expect.poll(check, { timeout, interval: 20 }).toBe(true);
/** Runs `attempt` until it resolves (every 50 ms), or fails the test with its last error. */
const waitForAsync = (attempt: () => Promise<void>) => vi.waitFor(attempt, { timeout: 10_000, interval: 50 });

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(() => cluster?.stop());

/** Scopes whose channels (`<prefix>sync:<scope>`) fall on every master, `perMaster` on each. */
async function scopesOnEveryMaster(prefix: string, perMaster: number): Promise<Map<string, string[]>> {
  const byMaster = new Map<string, string[]>();
  for (let i = 0; [...byMaster.values()].filter((s) => s.length >= perMaster).length < 3; i++) {
    const scope = `agent:${i}`;
    const master = await cluster.masterOf(calculateSlot(`${prefix}sync:${scope}`));
    const list = byMaster.get(master.key) ?? [];
    if (list.length < perMaster) list.push(scope);
    byMaster.set(master.key, list);
  }
  return byMaster;
}

/** Subscribers of a sharded channel on the master that owns it now. */
async function shardSubscribers(channel: string): Promise<number> {
  const owner = await cluster.masterOf(calculateSlot(channel));
  const probe = new Redis(owner.port, '127.0.0.1');
  try {
    const reply = (await probe.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    return Number(reply[1]);
  } finally {
    probe.disconnect();
  }
}

function collector(bus: Bus, scopes: string[]) {
  const got = new Map<string, number[]>();
  const subscribed = Promise.all(
    scopes.map((scope) =>
      bus.subscribe(scope, (m: BusMessage) => {
        got.set(scope, [...(got.get(scope) ?? []), ...m.events.map((e) => e.id)]);
      }),
    ),
  );
  return { got, subscribed };
}

describe('redis cluster bus', () => {
  it('subscribes each scope on the master owning its slot and delivers SPUBLISHed events on every shard', async () => {
    const prefix = uniqueChannelPrefix();
    const writer = createRedisBus({ url: cluster.url, channelPrefix: prefix });
    // REDIS_CLUSTER=true with one node's redis:// URL as the seed: the same cluster bus.
    const seed = `redis://${cluster.nodes[5]!.key}`;
    const reader = createRedisBus({ url: seed, cluster: true, channelPrefix: prefix });
    try {
      const byMaster = await scopesOnEveryMaster(prefix, 2);
      const scopes = [...byMaster.values()].flat();
      const { got, subscribed } = collector(reader, scopes);
      const offs = await subscribed;
      // Confirmed means confirmed by the owner: the subscription is there as soon as subscribe resolves.
      for (const scope of scopes) expect(await shardSubscribers(`${prefix}sync:${scope}`)).toBe(1);
      expect(reader.activeScopes()).toBe(scopes.length);

      await waitFor(() => writer.isHealthy() && reader.isHealthy());
      for (const scope of scopes) await writer.publish({ scope, events: [event(1, scope)] });
      // A classic PUBLISH does not reach sharded subscribers: delivery proves SPUBLISH.
      await waitFor(() => scopes.every((s) => got.get(s)?.length === 1));

      await offs[0]!();
      expect(await shardSubscribers(`${prefix}sync:${scopes[0]}`)).toBe(0);
      expect(reader.activeScopes()).toBe(scopes.length - 1);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('after a master is killed, re-subscribes its channels on the promoted replica before reporting up', async () => {
    const prefix = uniqueChannelPrefix();
    const writer = createRedisBus({ url: cluster.url, channelPrefix: prefix, publishTimeoutMs: 500 });
    const reader = createRedisBus({ url: cluster.url, channelPrefix: prefix });
    try {
      const byMaster = await scopesOnEveryMaster(prefix, 2);
      const scopes = [...byMaster.values()].flat();
      const { got, subscribed } = collector(reader, scopes);
      await subscribed;
      await waitFor(() => writer.isHealthy() && reader.isHealthy());

      const statuses: BusStatus[] = [];
      let subscribersAtUp: Promise<number[]> | undefined;
      reader.onStatus((status) => {
        statuses.push(status);
        // When 'up' is reported every channel must already be joined on its (new) owner.
        if (status === 'up' && !subscribersAtUp) {
          subscribersAtUp = Promise.all(scopes.map((s) => shardSubscribers(`${prefix}sync:${s}`)));
        }
      });
      const victim = cluster.nodes.find((n) => n.key === [...byMaster.keys()][0])!;
      const promoted = await cluster.failOver(victim);
      expect(promoted.key).not.toBe(victim.key);
      await waitFor(() => statuses.includes('up'), 15_000);
      expect(statuses.slice(0, 2)).toEqual(['down', 'up']);
      expect(await subscribersAtUp).toEqual(scopes.map(() => 1));
      expect(reader.isHealthy()).toBe(true);

      await waitFor(() => writer.isHealthy());
      for (const scope of scopes) {
        // The writer's slot map may still name the dead master for a moment: retry until published.
        await waitForAsync(() => writer.publish({ scope, events: [event(2, scope)] }));
      }
      await waitFor(() => scopes.every((s) => got.get(s)?.includes(2)));
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('follows a manual failover, where the old master lives on as a replica and unsubscribes its clients', async () => {
    const prefix = uniqueChannelPrefix();
    const writer = createRedisBus({ url: cluster.url, channelPrefix: prefix, publishTimeoutMs: 500 });
    const reader = createRedisBus({ url: cluster.url, channelPrefix: prefix });
    try {
      const byMaster = await scopesOnEveryMaster(prefix, 2);
      const scopes = [...byMaster.values()].flat();
      const { got, subscribed } = collector(reader, scopes);
      await subscribed;
      await waitFor(() => writer.isHealthy() && reader.isHealthy());
      const statuses: BusStatus[] = [];
      reader.onStatus((status) => statuses.push(status));

      // A master that still has a replica (the test before left one without).
      const masters = cluster.nodes.filter((n) => byMaster.has(n.key));
      const withReplica = await Promise.all(masters.map((m) => cluster.replicaOf(m)));
      const oldMaster = masters[withReplica.findIndex((r) => r !== undefined)]!;
      await cluster.manualFailover(oldMaster);
      // The old master's connection stays open; only the slot map says the channels moved.
      await waitFor(() => statuses.includes('up'), 15_000);
      expect(statuses.slice(0, 2)).toEqual(['down', 'up']);
      for (const scope of scopes) expect(await shardSubscribers(`${prefix}sync:${scope}`)).toBe(1);

      for (const scope of scopes)
        await waitForAsync(() => writer.publish({ scope, events: [event(3, scope)] }));
      await waitFor(() => scopes.every((s) => got.get(s)?.includes(3)));
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});
