import { createRedisBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { type RedisServer, startRedisServer, uniqueChannelPrefix } from '../../../test/support/redis';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  quietLog,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

let db: TestDatabase;
let redis: RedisServer;
beforeAll(async () => {
  db = await createTestDatabase('gw_redis');
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
  await db?.drop();
});

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : Number.NaN;
}

describe('Redis restart', () => {
  it('re-joins the channels and fills every active scope with what was published while Redis was away', async () => {
    const channelPrefix = uniqueChannelPrefix();
    // The gateway's bus and a separate writer's bus, as in production (different processes).
    const gatewayBus = createRedisBus({ url: redis.url, channelPrefix, log: quietLog });
    const writerBus = createRedisBus({ url: redis.url, channelPrefix, log: quietLog });
    const gw = await startGateway(
      { bus: gatewayBus, delta: pgDeltaSource(db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      // A publish before the writer's connection is ready is dropped (as in production, where the
      // head check would cover it; here the head check is off), so start writing once both are up.
      await waitFor(() => writerBus.isHealthy() && gatewayBus.isHealthy());
      const scopes = [newScope(), newScope()];
      const client = await TestClient.connect(gw.wsUrl, await tokenFor(scopes));
      for (const s of scopes) client.subscribe(s);
      for (const s of scopes) await client.waitFor((f) => f.type === 'subscribed' && f.scope === s);
      for (const s of scopes) await writeEvents(db.pool, writerBus, s, 3);
      for (const s of scopes) expect(await client.untilEvent(s, 3)).toEqual(range(1, 3));

      // Writes while Redis is down (and both buses know it): the commits succeed, the publishes
      // are lost.
      await redis.stop();
      await waitFor(() => !writerBus.isHealthy() && !gatewayBus.isHealthy());
      for (const s of scopes) await writeEvents(db.pool, writerBus, s, 4);
      await redis.start();
      for (const s of scopes) expect(await client.untilEvent(s, 7, 15_000)).toEqual(range(1, 7));

      // And the live path works again through the re-joined channels.
      await waitFor(() => writerBus.isHealthy() && gatewayBus.isHealthy());
      for (const s of scopes) await writeEvents(db.pool, writerBus, s, 2);
      for (const s of scopes) expect(await client.untilEvent(s, 9)).toEqual(range(1, 9));
      expect(await metric(gw.url, 'sync_gateway_bus_reconnects_total')).toBeGreaterThanOrEqual(1);
      expect(await metric(gw.url, 'sync_gateway_bus_up')).toBe(1);
      expect(await metric(gw.url, 'sync_gateway_gap_fills_total{reason="reconnect"')).toBeGreaterThanOrEqual(
        2,
      );
      client.close();
    } finally {
      await gw.stop();
      await gatewayBus.close();
      await writerBus.close();
    }
  });
});

describe('Redis down', () => {
  it('still serves new subscribes from the log, and streams them once Redis is back', async () => {
    const own = await startRedisServer();
    const channelPrefix = uniqueChannelPrefix();
    const gatewayBus = createRedisBus({ url: own.url, channelPrefix, log: quietLog });
    const writerBus = createRedisBus({ url: own.url, channelPrefix, log: quietLog });
    const gw = await startGateway(
      { bus: gatewayBus, delta: pgDeltaSource(db.pool) },
      { HEAD_CHECK_INTERVAL_MS: 300 },
    );
    try {
      await waitFor(() => gatewayBus.isHealthy());
      const scope = newScope();
      await writeEvents(db.pool, writerBus, scope, 2);
      await own.stop();
      await waitFor(() => !gatewayBus.isHealthy());
      // Redis is shared by every gateway: still ready (contract §8), the metric reports it.
      expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
      expect(await metric(gw.url, 'sync_dependency_up{dependency="redis"')).toBe(0);
      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      client.subscribe(scope, 1);
      await client.waitFor((f) => f.type === 'subscribed');
      expect(client.eventIds(scope)).toEqual([2]);
      // Committed while Redis is down: delivered by the head check, without the bus.
      await writeEvents(db.pool, writerBus, scope, 2);
      expect(await client.untilEvent(scope, 4)).toEqual(range(2, 4));
      await own.restart(0);
      await waitFor(() => gatewayBus.isHealthy() && writerBus.isHealthy());
      await writeEvents(db.pool, writerBus, scope, 2);
      expect(await client.untilEvent(scope, 6)).toEqual(range(2, 6));
      client.close();
    } finally {
      await gw.stop();
      await gatewayBus.close();
      await writerBus.close();
      await own.stop();
    }
  });
});

/** Resolves once `check()` holds (checked every 25 ms), or fails the test after 10 s. */
function waitFor(check: () => boolean) {
  return expect.poll(check, { timeout: 10_000, interval: 25 }).toBe(true);
}
