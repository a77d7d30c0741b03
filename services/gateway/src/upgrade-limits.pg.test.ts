import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import { pgDeltaSource, startGateway, TestClient } from '../test/support/gateway-harness';
import type { GatewayConfig } from './config';

let db: TestDatabase;
const bus = createMemoryBus();

beforeAll(async () => {
  db = await createTestDatabase('gw_limits');
});
afterAll(async () => {
  await db?.drop();
});

async function withGateway(
  overrides: Partial<GatewayConfig>,
  body: (wsUrl: string, metrics: () => Promise<string>) => Promise<void>,
) {
  const gw = await startGateway({ bus, delta: pgDeltaSource(db.pool) }, overrides);
  try {
    await body(gw.wsUrl, async () => (await fetch(`${gw.url}/metrics`)).text());
  } finally {
    await gw.stop();
  }
}

/** Opens a connection; resolves with the client, or with the HTTP status that refused it. */
async function attempt(url: string, headers: Record<string, string> = {}): Promise<TestClient | number> {
  const client = new TestClient(url, { headers });
  return client.opened.then(
    () => client,
    (err: { status?: number }) => err.status ?? -1,
  );
}

const withToken = async (wsUrl: string, sub: string) => `${wsUrl}?token=${await tokenFor(['*'], sub)}`;

describe('operator limits on upgrades', () => {
  it('refuses a subject over MAX_CONNECTIONS_PER_SUBJECT with 429 until one of its connections closes', async () => {
    await withGateway({ MAX_CONNECTIONS_PER_SUBJECT: 2 }, async (wsUrl, metrics) => {
      const a = (await attempt(await withToken(wsUrl, 'alice'))) as TestClient;
      const b = (await attempt(await withToken(wsUrl, 'alice'))) as TestClient;
      expect(await attempt(await withToken(wsUrl, 'alice'))).toBe(429);
      const bob = (await attempt(await withToken(wsUrl, 'bob'))) as TestClient;
      expect(bob).toBeInstanceOf(TestClient);
      a.close();
      await a.closed;
      const again = (await attempt(await withToken(wsUrl, 'alice'))) as TestClient;
      expect(again).toBeInstanceOf(TestClient);
      expect(await metrics()).toMatch(/sync_gateway_upgrades_total\{result="subject_connections"[^}]*\} 1/);
      for (const c of [b, bob, again]) c.close();
    });
  });

  it('refuses an address over MAX_CONNECTIONS_PER_IP; a trusted proxy header separates clients', async () => {
    await withGateway({ MAX_CONNECTIONS_PER_IP: 2, TRUST_PROXY_HEADER: 'x-forwarded-for' }, async (wsUrl) => {
      const from = (ip: string) => ({ 'x-forwarded-for': `1.1.1.1, ${ip}` });
      const open = [
        await attempt(await withToken(wsUrl, 'u1'), from('203.0.113.1')),
        await attempt(await withToken(wsUrl, 'u2'), from('203.0.113.1')),
      ];
      expect(await attempt(await withToken(wsUrl, 'u3'), from('203.0.113.1'))).toBe(429);
      const other = await attempt(await withToken(wsUrl, 'u3'), from('203.0.113.2'));
      expect(other).toBeInstanceOf(TestClient);
      for (const c of [...open, other]) (c as TestClient).close();
    });
  });

  it('refuses an address over UPGRADE_RATE_PER_SECOND before looking at its token', async () => {
    await withGateway({ UPGRADE_RATE_PER_SECOND: 1, UPGRADE_BURST: 3 }, async (wsUrl, metrics) => {
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await attempt(`${wsUrl}?token=garbage`));
      expect(results).toEqual([401, 401, 401, 429, 429]);
      const text = await metrics();
      expect(text).toMatch(/sync_gateway_upgrades_total\{result="unauthorized"[^}]*\} 3/);
      expect(text).toMatch(/sync_gateway_upgrades_total\{result="upgrade_rate"[^}]*\} 2/);
    });
  });

  it('refuses an address that keeps failing authentication, even with a valid token, until the bucket refills', async () => {
    await withGateway({ FAILED_AUTH_RATE_PER_SECOND: 1, FAILED_AUTH_BURST: 2 }, async (wsUrl, metrics) => {
      expect(await attempt(`${wsUrl}?token=garbage`)).toBe(401);
      expect(await attempt(`${wsUrl}?token=garbage`)).toBe(401);
      expect(await attempt(await withToken(wsUrl, 'u'))).toBe(429);
      expect(await metrics()).toMatch(/sync_gateway_upgrades_total\{result="failed_auth_rate"[^}]*\} 1/);
    });
  });

  it('with the defaults, many connections of one subject from one address are accepted', async () => {
    await withGateway({}, async (wsUrl) => {
      const clients = await Promise.all(
        Array.from({ length: 30 }, async () => attempt(await withToken(wsUrl, 'same'))),
      );
      for (const c of clients) expect(c).toBeInstanceOf(TestClient);
      for (const c of clients) (c as TestClient).close();
    });
  });
});
