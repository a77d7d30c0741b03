import type { Socket } from 'node:net';
import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  range,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_slow');
});
afterAll(async () => {
  await db?.drop();
});

describe('slow consumers', () => {
  it('closes a client that stops reading with 1013 while the others keep their stream', async () => {
    const bus = createMemoryBus();
    const gw = await startGateway(
      { bus, delta: pgDeltaSource(db.pool) },
      { MAX_BACKPRESSURE_BYTES: 256 * 1024, HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      const scope = newScope();
      const token = await tokenFor([scope]);
      const slow = await TestClient.connect(gw.wsUrl, token);
      const fast = await TestClient.connect(gw.wsUrl, token);
      for (const c of [slow, fast]) c.subscribe(scope);
      await Promise.all([slow, fast].map((c) => c.waitFor((f) => f.type === 'subscribed')));
      // The slow client's socket stops reading: the kernel buffers fill, then uWS's buffer grows.
      const raw = (slow.socket as unknown as { _socket: Socket })._socket;
      raw.pause();
      const total = 80;
      const writing = writeEvents(db.pool, bus, scope, total, 200 * 1024);
      expect(await fast.untilEvent(scope, total, 30_000)).toEqual(range(1, total));
      await writing;
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toMatch(/sync_gateway_slow_consumer_closes_total\{[^}]*\} 1/);
      expect(gw.gateway.connectionCount).toBe(1);
      raw.resume();
      const code = await slow.closed;
      expect(code).toBe(CLOSE_CODES.tryAgainLater);
      expect(slow.closeReason).toMatch(/resume/);
      // What the slow client did receive is a gap-free prefix: it resumes from its cursor.
      const ids = slow.eventIds(scope);
      expect(ids).toEqual(range(1, ids.length));
      expect(ids.length).toBeLessThan(total);
      fast.close();
    } finally {
      await gw.stop();
    }
  });
});

describe('large catch-up', () => {
  it('does not count a catch-up larger than the limit against a client that reads it slowly', async () => {
    const bus = createMemoryBus();
    const gw = await startGateway(
      { bus, delta: pgDeltaSource(db.pool) },
      { MAX_BACKPRESSURE_BYTES: 64 * 1024, HEAD_CHECK_INTERVAL_MS: 60_000 },
    );
    try {
      const scope = newScope();
      await writeEvents(db.pool, bus, scope, 60, 100 * 1024);
      const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
      const raw = (client.socket as unknown as { _socket: Socket })._socket;
      client.subscribe(scope, 1);
      raw.pause();
      // ~6 MB of catch-up sits in the buffers while the client does not read.
      await new Promise((r) => setTimeout(r, 300));
      raw.resume();
      await client.waitFor((f) => f.type === 'subscribed');
      expect(client.eventIds(scope)).toEqual(range(2, 60));
      await writeEvents(db.pool, bus, scope, 2);
      expect(await client.untilEvent(scope, 62)).toEqual(range(2, 62));
      expect(client.closeCode).toBeUndefined();
      client.close();
    } finally {
      await gw.stop();
    }
  });
});
