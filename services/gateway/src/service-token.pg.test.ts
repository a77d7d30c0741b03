import { createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { pgDeltaSource, startGateway } from '../test/support/gateway-harness';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_service_token');
});
afterAll(async () => {
  await db?.drop();
});

/** The status of an upgrade with this token: 101 when the socket opens. */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    socket.once('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('error', () => resolve(0));
  });
}

describe('service tokens at the gateway', () => {
  it('refuses the service token the gateway itself uses for the delta service, as a client token', async () => {
    const gw = await startGateway({ bus: createMemoryBus(), delta: pgDeltaSource(db.pool) });
    try {
      const service = await testAuth.signService('service:gateway', 60);
      expect(await upgradeStatus(`${gw.wsUrl}?token=${service}`)).toBe(401);
      expect(await upgradeStatus(`${gw.wsUrl}?token=${await tokenFor(['*'])}`)).toBe(101);
    } finally {
      await gw.stop();
    }
  });
});
