import { createRedisBus } from '@openagents/sync-server-kit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
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
beforeAll(async () => {
  db = await createTestDatabase('gw_hostile_bus');
});
afterAll(async () => {
  await db?.drop();
});

describe('hostile messages on the Redis channels', () => {
  it('drops whatever anyone with Redis access publishes that is not events of the scope; the node keeps serving', async () => {
    const channelPrefix = uniqueChannelPrefix();
    const bus = createRedisBus({ url: TEST_REDIS_URL, channelPrefix, log: quietLog });
    const raw = new Redis(TEST_REDIS_URL);
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
    try {
      const scope = newScope();
      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      client.subscribe(scope);
      await client.waitFor((f) => f.type === 'subscribed');
      const [first] = await writeEvents(db.pool, bus, scope, 1);
      await client.untilEvent(scope, 1);
      const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
      const garbage = [
        'null',
        '42',
        '"a string"',
        '[]',
        '{}',
        '{"scope":5}',
        'not json at all',
        deep(100_000),
        JSON.stringify({ scope, events: null }),
        JSON.stringify({ scope, events: [null, 1, 'x'] }),
        JSON.stringify({ scope, events: [{ ...first, id: 'two' }] }),
        `{"scope":${JSON.stringify(scope)},"events":[{"id":2,"scope":${JSON.stringify(scope)},"data":${deep(6000)}}]}`,
        `{"__proto__":{"scope":${JSON.stringify(scope)}},"events":[]}`,
      ];
      for (const message of garbage) await raw.publish(`${channelPrefix}sync:${scope}`, message);
      await writeEvents(db.pool, bus, scope, 2);
      expect(await client.untilEvent(scope, 3)).toEqual(range(1, 3));

      // Still serving: a fresh connection subscribes and receives a live event.
      const other = newScope();
      const fresh = await TestClient.connect(gw.wsUrl, await tokenFor([other]));
      fresh.subscribe(other);
      await fresh.waitFor((f) => f.type === 'subscribed');
      await writeEvents(db.pool, bus, other, 1);
      expect(await fresh.untilEvent(other, 1)).toEqual([1]);
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toMatch(/sync_gateway_bus_messages_dropped_total\{reason="depth"/);
      client.close();
      fresh.close();
    } finally {
      await gw.stop();
      await bus.close();
      raw.disconnect();
    }
  });
});
