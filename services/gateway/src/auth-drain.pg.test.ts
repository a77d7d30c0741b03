import { request } from 'node:http';
import { connect } from 'node:net';
import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import { newScope, pgDeltaSource, startGateway, TestClient } from '../test/support/gateway-harness';

let db: TestDatabase;
const bus = createMemoryBus();

beforeAll(async () => {
  db = await createTestDatabase('gw_auth');
});
afterAll(async () => {
  await db?.drop();
});

async function upgradeStatus(url: string, headers: Record<string, string> = {}) {
  const client = new TestClient(url, { headers });
  const error = await client.opened.then(
    () => undefined,
    (err: { status?: number }) => err,
  );
  client.socket.terminate();
  return error?.status ?? 101;
}

describe('upgrade auth', () => {
  it('refuses a missing, invalid or expired token with 401 and a JSON body', async () => {
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
    try {
      expect(await upgradeStatus(gw.wsUrl)).toBe(401);
      expect(await upgradeStatus(`${gw.wsUrl}?token=garbage`)).toBe(401);
      expect(await upgradeStatus(`${gw.wsUrl}?token=${await tokenFor(['*'], 'u', -60)}`)).toBe(401);
      const wrongKey = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Iiwic2NvcGVzIjpbIioiXSwiZXhwIjo5OTk5OTk5OTk5fQ.AAAA';
      expect(await upgradeStatus(`${gw.wsUrl}?token=${wrongKey}`)).toBe(401);
      expect(await upgradeStatus(gw.wsUrl, { authorization: 'Basic abc' })).toBe(401);

      const refusal = await rawUpgrade(gw.gateway.port);
      expect(refusal.status).toBe(401);
      expect(JSON.parse(refusal.body)).toMatchObject({ error: { code: 'unauthorized' } });
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      expect(text).toMatch(/sync_gateway_upgrades_total\{result="unauthorized"[^}]*\} 6/);
    } finally {
      await gw.stop();
    }
  });

  it('accepts the token in an Authorization header', async () => {
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
    try {
      const scope = newScope();
      const client = new TestClient(gw.wsUrl, {
        headers: { authorization: `Bearer ${await tokenFor([scope])}` },
      });
      await client.opened;
      client.subscribe(scope);
      await client.waitFor((f) => f.type === 'subscribed');
      client.close();
    } finally {
      await gw.stop();
    }
  });

  it('survives upgrades aborted while the token is being checked', async () => {
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
    try {
      const token = await tokenFor(['*']);
      await Promise.all(
        Array.from(
          { length: 20 },
          () =>
            new Promise<void>((resolve) => {
              const socket = connect(gw.gateway.port, '127.0.0.1', () => {
                socket.write(
                  `GET /sync?token=${token} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n` +
                    'sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
                );
                socket.destroy();
                resolve();
              });
              socket.on('error', () => resolve());
            }),
        ),
      );
      const client = await TestClient.connect(gw.wsUrl, token);
      client.send({ type: 'ping', t: 'ok' });
      await client.waitFor((f) => f.type === 'pong');
      client.close();
    } finally {
      await gw.stop();
    }
  });

  it('closes a connection with 1008 when its token expires', async () => {
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) });
    try {
      const client = await TestClient.connect(gw.wsUrl, await tokenFor(['*'], 'u', 1));
      expect(await client.closed).toBe(CLOSE_CODES.policyViolation);
      expect(client.closeReason).toMatch(/expired/);
    } finally {
      await gw.stop();
    }
  });
});

describe('drain', () => {
  it('turns /readyz to 503, refuses upgrades with 503 and closes sockets with 1012 spread over the window', async () => {
    const windowMs = 600;
    const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) }, { DRAIN_WINDOW_MS: windowMs });
    try {
      await waitReady(gw.url);
      const token = await tokenFor(['*']);
      const clients = await Promise.all(Array.from({ length: 6 }, () => TestClient.connect(gw.wsUrl, token)));
      const closedAt: number[] = [];
      for (const c of clients) void c.closed.then(() => closedAt.push(Date.now()));
      const started = Date.now();
      const draining = gw.gateway.drain();
      // A client that leaves on its own while the drain is under way is skipped, not touched.
      const leaver = clients.pop()!;
      leaver.close();
      await leaver.closed;
      const readyz = await fetch(`${gw.url}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.json()).toMatchObject({ draining: true });
      expect(await upgradeStatus(`${gw.wsUrl}?token=${token}`)).toBe(503);
      await draining;
      await Promise.all(clients.map((c) => c.closed));
      expect(clients.map((c) => c.closeCode)).toEqual(clients.map(() => CLOSE_CODES.serviceRestart));
      // Spread, not all at once: the last close comes well after the first.
      closedAt.sort((a, b) => a - b);
      expect(closedAt[closedAt.length - 1]! - closedAt[0]!).toBeGreaterThanOrEqual(windowMs / 3);
      expect(closedAt[0]! - started).toBeLessThan(windowMs);
    } finally {
      await gw.stop();
    }
  });
});

/** An upgrade request without a token, read as plain HTTP: the status line and the body. */
function rawUpgrade(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      port,
      host: '127.0.0.1',
      path: '/sync',
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('upgrade', () => reject(new Error('upgraded without a token')));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves once the gateway's `/readyz` answers 200 (asked every 50 ms, for 5 s at most). */
function waitReady(url: string) {
  return expect
    .poll(async () => (await fetch(`${url}/readyz`)).status, { timeout: 5_000, interval: 50 })
    .toBe(200);
}
