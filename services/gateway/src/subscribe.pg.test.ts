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
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  db = await createTestDatabase('gw_subscribe');
  gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

describe('subscribe flow', () => {
  it('bootstraps at L, then delivers L+1, L+2, ... live', async () => {
    const scope = newScope();
    await writeEvents(db.pool, bus, scope, 3);
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(scope);
    const boot = await client.waitFor((f) => f.type === 'bootstrap');
    expect(boot).toMatchObject({ type: 'bootstrap', scope, lastSyncId: 3 });
    expect(boot.type === 'bootstrap' && boot.reset).toBeUndefined();
    await client.waitFor((f) => f.type === 'subscribed');
    await writeEvents(db.pool, bus, scope, 5);
    const ids = await client.untilEvent(scope, 8);
    expect(ids).toEqual(range(4, 8));
    client.close();
  });

  it('resumes from a cursor with exactly the missing events, then live', async () => {
    const scope = newScope();
    await writeEvents(db.pool, bus, scope, 10);
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['agent:*']));
    client.subscribe(scope, 4);
    await client.waitFor((f) => f.type === 'subscribed');
    expect(client.eventIds(scope)).toEqual(range(5, 10));
    await writeEvents(db.pool, bus, scope, 3);
    expect(await client.untilEvent(scope, 13)).toEqual(range(5, 13));
    expect(client.frames.some((f) => f.type === 'bootstrap')).toBe(false);
    client.close();
  });

  it('answers a cursor outside the retained log with a reset bootstrap', async () => {
    const scope = newScope();
    await writeEvents(db.pool, bus, scope, 6);
    await db.pool.query('DELETE FROM sync_events WHERE scope = $1 AND id <= 3', [scope]);
    await db.pool.query('UPDATE sync_scopes SET pruned_through = 3 WHERE scope = $1', [scope]);
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(scope, 1);
    const boot = await client.waitFor((f) => f.type === 'bootstrap');
    expect(boot).toMatchObject({ scope, lastSyncId: 6, reset: true });
    await client.waitFor((f) => f.type === 'subscribed');
    await writeEvents(db.pool, bus, scope, 1);
    expect(await client.untilEvent(scope, 7)).toEqual([7]);
    client.close();
  });

  it('keeps each scope of a connection ordered while events race the subscribe', async () => {
    const scopes = [newScope(), newScope(), newScope()];
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(scopes));
    const writers = scopes.map((s) => writeEvents(db.pool, bus, s, 15));
    for (const [i, s] of scopes.entries()) client.subscribe(s, i === 0 ? undefined : 0);
    await Promise.all(writers);
    for (const s of scopes) {
      await client.waitFor((f) => f.type === 'subscribed' && f.scope === s);
      const boot = client.frames.find((f) => f.type === 'bootstrap' && f.scope === s);
      const from = boot?.type === 'bootstrap' ? boot.lastSyncId : 0;
      expect(await client.untilEvent(s, 15).catch(() => client.eventIds(s))).toEqual(range(from + 1, 15));
    }
    client.close();
  });

  it('unsubscribes, also in the middle of catching up', async () => {
    const scope = newScope();
    await writeEvents(db.pool, bus, scope, 2);
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope]));
    client.subscribe(scope, 1);
    client.send({ type: 'unsubscribe', scope });
    client.send({ type: 'ping', t: 'after-unsubscribe' });
    await client.waitFor((f) => f.type === 'pong');
    await writeEvents(db.pool, bus, scope, 2);
    client.subscribe(scope, 4);
    await client.waitFor((f) => f.type === 'subscribed');
    const framesBefore = client.frames.length;
    client.send({ type: 'unsubscribe', scope });
    client.send({ type: 'ping', t: 1 });
    await client.waitFor((f) => f.type === 'pong' && f.t === 1);
    await writeEvents(db.pool, bus, scope, 2);
    client.send({ type: 'ping', t: 2 });
    await client.waitFor((f) => f.type === 'pong' && f.t === 2);
    expect(client.frames.slice(framesBefore).filter((f) => f.type === 'sync')).toEqual([]);
    expect(gw.gateway.metrics.subscriptions).toBeDefined();
    client.close();
  });
});
