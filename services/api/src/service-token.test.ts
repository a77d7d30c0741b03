import { createLogger, createMemoryBus, createPool, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { testAuth } from '../../../test/support/tokens';
import { createApiApp } from './app';

// Refused before the database: the pool never connects.
const pool = createPool({ url: 'postgres://postgres@127.0.0.1:1/unused', max: 1 });
afterAll(() => pool.end());

describe('service tokens at the API', () => {
  it('refuses a service token (use: service) with 401, scopes * notwithstanding', async () => {
    const app = createApiApp({
      pool,
      bus: createMemoryBus(),
      auth: testAuth,
      log: createLogger({ name: 'api-service-token-test', level: 'silent' }),
      registry: createRegistry('api'),
    });
    const res = await app.request('/api/agents', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await testAuth.signService('service:gateway', 60)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ org_id: crypto.randomUUID(), name: 'x' }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({
      error: { code: 'unauthorized', message: 'Service tokens are not accepted here' },
    });
  });
});
