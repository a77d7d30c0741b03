import { createDeltaApp, createReadGate } from '@openagents/sync-delta-service';
import type { ServerFrame } from '@openagents/sync-protocol';
import { createMemoryBus, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { tokenFor } from '../../../test/support/tokens';
import {
  auth,
  newScope,
  pgDeltaSource,
  quietLog,
  startGateway,
  TestClient,
  writeEvents,
} from '../test/support/gateway-harness';
import { createHttpDeltaSource } from './http-delta-source';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('gw_storm');
});
afterAll(async () => {
  await db?.drop();
});

describe('subscribe storm', () => {
  it('queues bootstraps at the gateway within what the delta service admits: every subscribe bootstraps', async () => {
    // The delta service at a small scale of its production gate: 1 bootstrap at a time, 2 in
    // line, 503 beyond. The gateway reads it over HTTP, as in production, and counts its answers.
    const deltaApp = createDeltaApp({
      reader: pgDeltaSource(db.pool),
      auth,
      log: quietLog,
      registry: createRegistry('delta-storm', { defaultMetrics: false }),
      bootstrapGate: createReadGate({ concurrency: 1, queue: 2 }),
    });
    const bootstrapStatuses: number[] = [];
    const delta = createHttpDeltaSource({
      baseUrl: 'http://delta.test',
      token: await auth.sign({ sub: 'service:gateway', scopes: ['*'] }),
      fetch: async (input, init) => {
        const response = await deltaApp.fetch(new Request(input, init));
        if (String(input).includes('/sync/bootstrap')) bootstrapStatuses.push(response.status);
        return response;
      },
    });
    const gw = await startGateway({ bus: createMemoryBus(), delta }, { DELTA_BOOTSTRAP_CONCURRENCY: 2 });
    const clients: TestClient[] = [];
    try {
      const scopes = Array.from({ length: 50 }, () => newScope());
      await Promise.all(scopes.map((scope) => writeEvents(db.pool, undefined, scope, 1)));
      for (let c = 0; c < 5; c++) {
        clients.push(await TestClient.connect(gw.wsUrl, await tokenFor(scopes.slice(c * 10, c * 10 + 10))));
      }
      // 50 distinct scopes at once: nothing for single-flight or the bootstrap cache to share.
      for (const [i, scope] of scopes.entries()) clients[Math.floor(i / 10)]!.subscribe(scope);
      const ended = (f: ServerFrame) => f.type === 'subscribed' || f.type === 'error';
      await Promise.all(
        clients.map((client) => client.until(() => client.frames.filter(ended).length >= 10, 30_000)),
      );
      const frames = clients.flatMap((client) => client.frames);
      expect(frames.filter((f) => f.type === 'error')).toEqual([]);
      const bootstrapped = frames.flatMap((f) => (f.type === 'bootstrap' ? [f.scope] : []));
      expect(bootstrapped.sort()).toEqual([...scopes].sort());
      for (const f of frames) if (f.type === 'bootstrap') expect(f.lastSyncId).toBe(1);
      // Not one bootstrap was refused: the storm waited in the gateway's line, not in retries.
      expect(bootstrapStatuses.filter((s) => s !== 200)).toEqual([]);
      expect(bootstrapStatuses).toHaveLength(50);
    } finally {
      for (const client of clients) client.close();
      await gw.stop();
    }
  }, 60_000);
});
