import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { startService } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('api_main');
});
afterAll(async () => db?.drop());

it('refuses to start without SYNC_JWT_SECRET, naming the variable', async () => {
  const service = await startService('api', {
    port: await freePort(),
    env: { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, SYNC_JWT_SECRET: '' },
    waitReady: false,
  });
  expect(await service.exited).toBe(1);
  expect(service.output.join('\n')).toMatch(/SYNC_JWT_SECRET/);
});

it('serves writes on its port and exits 0 on SIGTERM after draining', async () => {
  const service = await startService('api', {
    port: await freePort(),
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_CHANNEL_PREFIX: uniqueChannelPrefix(),
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'info',
    },
  });
  try {
    const res = await fetch(`${service.url}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await tokenFor(['*'])}`, 'content-type': 'application/json' },
      body: JSON.stringify({ org_id: randomUUID(), name: 'over http' }),
    });
    expect(res.status).toBe(201);
    expect((await fetch(`${service.url}/metrics`)).status).toBe(200);
    expect(await service.kill('SIGTERM')).toBe(0);
    const logs = service.output.join('\n');
    expect(logs).toMatch(/"route":"\/api\/:model"/);
    expect(logs).toMatch(/SIGTERM received/);
  } finally {
    await service.kill('SIGKILL');
  }
});
