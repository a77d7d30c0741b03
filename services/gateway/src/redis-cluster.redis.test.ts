import { randomUUID } from 'node:crypto';
import { type Bus, createRedisBus } from '@openagents/sync-server-kit';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../../test/support/ports';
import { uniqueChannelPrefix } from '../../../test/support/redis';
import { type RedisCluster, startRedisCluster } from '../../../test/support/redis-cluster';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { createApiService, loadApiConfig } from '../../api/src/index';
import { type ApiHarness, createApiHarness } from '../../api/test/api-harness';
import { pgDeltaSource, quietLog, range, startGateway, TestClient } from '../test/support/gateway-harness';
import { loadGatewayConfig } from './config';
import { createGatewayService } from './service';

/**
 * The guarantee over a Redis Cluster: writes through the api app (its bus SPUBLISHes), a real
 * gateway (its bus SSUBSCRIBEs on each shard) and real WebSocket clients, with the scopes spread
 * over all three shards, and a master SIGKILLed in the middle of the writes.
 */
let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
});
afterAll(() => cluster?.stop());

interface Setup {
  h: ApiHarness;
  gatewayBus: Bus;
  /** Agent ids whose scopes' channels fall on every master: master key → agent ids. */
  agentsByMaster: Map<string, string[]>;
  scopes: string[];
  channelPrefix: string;
}

async function setUp(perMaster: number): Promise<Setup> {
  const channelPrefix = uniqueChannelPrefix();
  const h = await createApiHarness({
    label: 'gw_cluster',
    bus: createRedisBus({ url: cluster.url, channelPrefix, log: quietLog, publishTimeoutMs: 500 }),
  });
  const gatewayBus = createRedisBus({ url: cluster.url, channelPrefix, log: quietLog });
  const agentsByMaster = new Map<string, string[]>();
  while ([...agentsByMaster.values()].filter((a) => a.length >= perMaster).length < 3) {
    const id = randomUUID();
    const master = await cluster.masterOf(calculateSlot(`${channelPrefix}sync:agent:${id}`));
    const list = agentsByMaster.get(master.key) ?? [];
    if (list.length < perMaster) list.push(id);
    agentsByMaster.set(master.key, list);
  }
  const org = randomUUID();
  for (const id of [...agentsByMaster.values()].flat()) {
    const res = await h.request('POST', '/api/agents', { id, org_id: org, name: 'a' });
    expect(res.status).toBe(201);
  }
  const scopes = [...agentsByMaster.values()].flat().map((id) => `agent:${id}`);
  return { h, gatewayBus, agentsByMaster, scopes, channelPrefix };
}

/** Pause between one agent's writes in the failover test. */
const WRITE_PAUSE_MS = 20;

/** Posts `count` messages to an agent, one after the other (their events are 1..count of its scope). */
async function writeMessages(h: ApiHarness, agentId: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const res = await h.request('POST', '/api/messages', {
      agent_id: agentId,
      role: 'assistant',
      content: `m${i}`,
    });
    expect(res.status).toBe(201);
  }
}

/** Subscribers of a sharded channel on the master that owns its slot now. */
async function shardSubscribers(channel: string): Promise<number> {
  const owner = await cluster.masterOf(calculateSlot(channel));
  const probe = new Redis(owner.port, '127.0.0.1');
  try {
    return Number(((await probe.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
  } finally {
    probe.disconnect();
  }
}

async function subscribedClient(wsUrl: string, scopes: string[]): Promise<TestClient> {
  const client = await TestClient.connect(wsUrl, await tokenFor(scopes));
  for (const scope of scopes) client.subscribe(scope);
  for (const scope of scopes) await client.waitFor((f) => f.type === 'bootstrap' && f.scope === scope);
  return client;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : Number.NaN;
}

describe('over a Redis Cluster', () => {
  it('delivers every event once, in order, with the scopes spread over all shards', async () => {
    const { h, gatewayBus, scopes } = await setUp(2);
    // No head checks: everything must come through the sharded bus.
    const gw = await startGateway(
      { bus: gatewayBus, delta: pgDeltaSource(h.db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      await waitFor(() => gatewayBus.isHealthy() && h.bus.isHealthy());
      const clients = [await subscribedClient(gw.wsUrl, scopes), await subscribedClient(gw.wsUrl, scopes)];
      await Promise.all(scopes.map((scope) => writeMessages(h, scope.slice('agent:'.length), 15)));
      for (const client of clients) {
        for (const scope of scopes) expect(await client.untilEvent(scope, 15)).toEqual(range(1, 15));
        client.close();
      }
      expect(await metric(gw.url, 'sync_gateway_gap_fills_total')).toBeNaN();
    } finally {
      await gw.stop();
      await gatewayBus.close();
      await h.close();
    }
  });

  it('fails over when a master is SIGKILLed during writes; clients end with every event once, in order', async () => {
    const { h, gatewayBus, agentsByMaster, scopes, channelPrefix } = await setUp(2);
    const gw = await startGateway(
      { bus: gatewayBus, delta: pgDeltaSource(h.db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 500 },
    );
    try {
      await waitFor(() => gatewayBus.isHealthy() && h.bus.isHealthy());
      const client = await subscribedClient(gw.wsUrl, scopes);
      // Every agent is written to until each has had a few writes after the failover.
      let failedOverAt: number | undefined;
      const writing = Promise.all(
        scopes.map(async (scope) => {
          let count = 0;
          let afterFailover = 0;
          while (afterFailover < 3) {
            await writeMessages(h, scope.slice('agent:'.length), 1);
            count++;
            if (failedOverAt !== undefined) afterFailover++;
            // A write rate, not a wait for anything: about 40 writes a second per agent through
            // the 10-30 s of the failover, instead of thousands for the clients to catch up on.
            await new Promise((r) => setTimeout(r, WRITE_PAUSE_MS));
          }
          return count;
        }),
      );
      // Kill the master of the first agents' shard once their first events are through.
      const victimAgent = [...agentsByMaster.values()][0]![0]!;
      await client.untilEvent(`agent:${victimAgent}`, 5);
      const victim = cluster.nodes.find((n) => n.key === [...agentsByMaster.keys()][0])!;
      const promoted = await cluster.failOver(victim);
      expect(promoted.key).not.toBe(victim.key);
      failedOverAt = Date.now();
      const written = await writing;
      // Publishes to the dead master were lost while its replica took over: repaired from the log.
      expect(await h.metric('sync_bus_publish_failures_total')).toBeGreaterThan(0);
      for (const [i, scope] of scopes.entries()) {
        expect(await client.untilEvent(scope, written[i]!, 20_000)).toEqual(range(1, written[i]!));
      }
      // The gateway saw the shard go and come back, and every channel is joined on its owner now.
      await waitFor(() => gatewayBus.isHealthy());
      expect(await metric(gw.url, 'sync_gateway_bus_reconnects_total')).toBeGreaterThanOrEqual(1);
      expect(await metric(gw.url, 'sync_gateway_bus_up')).toBe(1);
      for (const scope of scopes) expect(await shardSubscribers(`${channelPrefix}sync:${scope}`)).toBe(1);
      client.close();
    } finally {
      await gw.stop();
      await gatewayBus.close();
      await h.close();
    }
    // Failure detection (cluster-node-timeout), the replica's election and the repair of lost
    // publishes take ~10 s on a quiet machine and over 30 s on a loaded one.
  }, 90_000);
});

describe('configured through the environment only', () => {
  it('a worker and a gateway given REDIS_CLUSTER=true and one node as the seed talk over the cluster', async () => {
    const { h, gatewayBus, scopes, channelPrefix } = await setUp(1);
    await gatewayBus.close();
    const common = {
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      REDIS_CHANNEL_PREFIX: channelPrefix,
      LOG_LEVEL: 'silent',
    };
    const api = createApiService({
      config: loadApiConfig({
        ...common,
        DATABASE_URL: 'postgres://unused@127.0.0.1/unused',
        REDIS_URL: `redis://${cluster.nodes[3]!.key}`,
        REDIS_CLUSTER: 'true',
        RATE_LIMIT_PER_SECOND: '0',
      }),
      log: quietLog,
      pool: h.db.pool,
    });
    const port = await freePort();
    const gateway = createGatewayService({
      config: loadGatewayConfig({
        ...common,
        REDIS_URL: `redis://${cluster.nodes[4]!.key}`,
        REDIS_CLUSTER: 'true',
        DELTA_URL: 'http://unused',
        PORT: String(port),
        // No head checks within the test: every event must come over the sharded bus.
        HEAD_CHECK_INTERVAL_MS: '600000',
      }),
      log: quietLog,
      delta: pgDeltaSource(h.db.pool),
    });
    await gateway.start();
    try {
      // Ready means the bus is up: every shard connection of the cluster bus answered.
      await waitForAsync(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        if (res.status !== 200) throw new Error(`readyz ${res.status}`);
      });
      const client = await subscribedClient(`ws://127.0.0.1:${port}/sync`, scopes);
      const token = await tokenFor(['*']);
      for (const scope of scopes) {
        for (let i = 0; i < 3; i++) {
          const res = await api.app.request('/api/messages', {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ agent_id: scope.slice('agent:'.length), role: 'user', content: `c${i}` }),
          });
          expect(res.status).toBe(201);
        }
      }
      // The shard subscriptions show the gateway's bus is the cluster one.
      for (const scope of scopes) expect(await client.untilEvent(scope, 3)).toEqual(range(1, 3));
      for (const scope of scopes) expect(await shardSubscribers(`${channelPrefix}sync:${scope}`)).toBe(1);
      client.close();
    } finally {
      await gateway.stop();
      await api.stop();
      await h.close();
    }
  });
});

/** Runs `attempt` until it resolves (every 50 ms), or fails the test with its last error after 15 s. */
function waitForAsync(attempt: () => Promise<void>) {
  return vi.waitFor(attempt, { timeout: 15_000, interval: 50 });
}

/** Resolves once `check()` holds (checked every 25 ms), or fails the test after 15 s. */
function waitFor(check: () => boolean) {
  return expect.poll(check, { timeout: 15_000, interval: 25 }).toBe(true);
}
