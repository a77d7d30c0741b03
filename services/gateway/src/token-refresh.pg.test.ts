import { createSyncClient } from '@openagents/sync-client';
import { CLOSE_CODES, type ServerFrame } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  newScope,
  pgDeltaSource,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';

let db: TestDatabase;
const bus = createMemoryBus();
let gw: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  db = await createTestDatabase('gw_refresh');
  gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
});
afterAll(async () => {
  await gw?.stop();
  await db?.drop();
});

const errors = (client: TestClient) => client.frames.filter((f) => f.type === 'error');
const authed = (f: ServerFrame) => f.type === 'authed';

describe('auth frame: refreshing the token in place', () => {
  it('accepts a token of the same subject, drops the scopes it no longer grants, keeps the rest', async () => {
    const kept = newScope();
    const lost = newScope();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([kept, lost], 'alice'));
    client.subscribe(kept);
    client.subscribe(lost);
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === kept);
    await client.waitFor((f) => f.type === 'subscribed' && f.scope === lost);

    const fresh = await tokenFor([kept], 'alice', 7200);
    client.send({ type: 'auth', token: fresh });
    const answer = await client.waitFor(authed);
    expect(answer).toEqual({ type: 'authed', exp: expect.any(Number) });
    expect((answer as { exp: number }).exp).toBeGreaterThan(Date.now() / 1000 + 7000);
    expect(errors(client)).toEqual([
      { type: 'error', code: 'forbidden', message: expect.stringContaining(lost), scope: lost },
    ]);

    await writeEvents(db.pool, bus, lost, 1);
    await writeEvents(db.pool, bus, kept, 1);
    expect(await client.untilEvent(kept, 1)).toEqual([1]);
    expect(client.eventIds(lost)).toEqual([]);
    // The dropped scope can no longer be subscribed with the new token.
    client.subscribe(lost);
    await client.until(() => errors(client).length === 2);
    expect(errors(client)[1]).toMatchObject({ code: 'forbidden', scope: lost });
    expect(client.closeCode).toBeUndefined();
    client.close();
  });

  it('refuses a token of another subject (forbidden) and an invalid one (unauthorized); the old token stays', async () => {
    const scope = newScope();
    const client = await TestClient.connect(gw.wsUrl, await tokenFor([scope], 'alice'));
    client.subscribe(scope);
    await client.waitFor((f) => f.type === 'subscribed');
    client.send({ type: 'auth', token: await tokenFor(['*'], 'mallory') });
    await client.until(() => errors(client).length === 1);
    client.send({ type: 'auth', token: 'not-a-jwt' });
    client.send({ type: 'auth', token: await tokenFor(['*'], 'alice', -60) });
    await client.until(() => errors(client).length === 3);
    expect(errors(client).map((e) => e.type === 'error' && e.code)).toEqual([
      'forbidden',
      'unauthorized',
      'unauthorized',
    ]);
    expect(client.frames.some(authed)).toBe(false);
    // Still subscribed with the old token's scopes, and nothing more.
    await writeEvents(db.pool, bus, scope, 1);
    expect(await client.untilEvent(scope, 1)).toEqual([1]);
    const other = newScope();
    client.subscribe(other);
    await client.until(() => errors(client).length === 4);
    expect(errors(client)[3]).toMatchObject({ code: 'forbidden', scope: other });
    client.close();
  });

  it('moves the expiry to the new token: a shorter one closes the connection with 1008 at its exp', async () => {
    const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*'], 'alice', 3600));
    client.send({ type: 'auth', token: await tokenFor(['*'], 'alice', 1) });
    await client.waitFor(authed);
    expect(await client.closed).toBe(CLOSE_CODES.policyViolation);
    expect(client.closeReason).toBe('token expired');
  });

  it('the sync client refreshes its token on its open socket, and the real gateway accepts it', async () => {
    const scope = newScope();
    // The client refreshes 30 s before exp: a 31 s token is refreshed about a second in. Each
    // token lives a second longer than the one before, so two minted within the same second
    // still differ (an unchanged token is not sent: the client leaves it to expire).
    let issued = 0;
    const getToken = async () => {
      issued++;
      return tokenFor([scope], 'carol', 31 + issued);
    };
    const client = createSyncClient({
      url: gw.url,
      token: await tokenFor([scope], 'carol', 31),
      getToken,
      WebSocket: WebSocket as never,
      fetch: () => new Promise<Response>(() => {}),
    });
    const metric = async () => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      return Number(/sync_gateway_token_refreshes_total\{result="ok"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await metric();
    try {
      client.subscribeScope(scope);
      // Two refreshes went out on the client's socket and were accepted, without a reconnect.
      await expect.poll(metric, { timeout: 15_000, interval: 100 }).toBeGreaterThanOrEqual(before + 2);
      expect(issued).toBeGreaterThanOrEqual(2);
      const upgrades = await (await fetch(`${gw.url}/metrics`)).text();
      const accepted = /sync_gateway_upgrades_total\{result="accepted"[^}]*\} (\d+)/.exec(upgrades)?.[1];
      // Still live on the same socket: a new event reaches the client's store.
      await writeEvents(db.pool, bus, scope, 1);
      await new Promise<void>((resolve) => {
        const off = client.subscribe((state) => {
          if (state.scopes[scope]?.lastSyncId === 1) {
            off();
            resolve();
          }
        });
      });
      const after = await (await fetch(`${gw.url}/metrics`)).text();
      expect(/sync_gateway_upgrades_total\{result="accepted"[^}]*\} (\d+)/.exec(after)?.[1]).toBe(accepted);
    } finally {
      await client.close();
    }
  });
});
