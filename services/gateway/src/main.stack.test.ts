import { CLOSE_CODES } from '@openagents/sync-protocol';
import { createRedisBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { startService } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { newScope, range, TestClient, writeEvents } from '../test/support/gateway-harness';

const baseEnv = {
  REDIS_URL: TEST_REDIS_URL,
  DELTA_URL: 'http://127.0.0.1:9',
  SYNC_JWT_SECRET: TEST_JWT_SECRET,
};

describe('gateway main', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('gw_main');
  });
  afterAll(() => db.drop());

  it('refuses to start on the pure-JS uWS fallback', async () => {
    const proc = await startService('gateway', {
      port: await freePort(),
      env: { ...baseEnv, UWS_USE_FALLBACK: '1' },
      waitReady: false,
    });
    expect(await proc.exited).not.toBe(0);
    expect(proc.output.join('\n')).toMatch(/refusing to start: uWebSockets\.js native binary is not loaded/);
  });

  it('refuses to start without SYNC_JWT_SECRET, naming it', async () => {
    const proc = await startService('gateway', {
      port: await freePort(),
      env: { ...baseEnv, SYNC_JWT_SECRET: '' },
      waitReady: false,
    });
    expect(await proc.exited).toBe(1);
    expect(proc.output.join('\n')).toMatch(/refusing to start[\s\S]*SYNC_JWT_SECRET/);
  });

  it('streams over Redis with the delta service as a process, and drains on SIGTERM', async () => {
    const prefix = uniqueChannelPrefix();
    const delta = await startService('delta', {
      port: await freePort(),
      env: { DATABASE_URL: db.url, SYNC_JWT_SECRET: TEST_JWT_SECRET },
    });
    const gateway = await startService('gateway', {
      port: await freePort(),
      env: { ...baseEnv, DELTA_URL: delta.url, REDIS_CHANNEL_PREFIX: prefix, DRAIN_WINDOW_MS: '300' },
    });
    const writerBus = createRedisBus({ url: TEST_REDIS_URL, channelPrefix: prefix });
    try {
      const scope = newScope();
      await writeEvents(db.pool, writerBus, scope, 3);
      const wsUrl = `ws://127.0.0.1:${gateway.port}/sync`;
      const client = await TestClient.connect(wsUrl, await tokenFor([scope]));
      client.subscribe(scope, 1);
      await client.waitFor((f) => f.type === 'subscribed');
      await writeEvents(db.pool, writerBus, scope, 3);
      expect(await client.untilEvent(scope, 6)).toEqual(range(2, 6));

      expect(await gateway.kill('SIGTERM')).toBe(0);
      expect(await client.closed).toBe(CLOSE_CODES.serviceRestart);
    } finally {
      await writerBus.close();
      await gateway.kill('SIGKILL');
      await delta.kill('SIGTERM');
    }
    // Two service processes start here: 26 s at load average 30 on the 2-core box.
  }, 90_000);
});
