import { createLogger, createMemoryBus, createPool, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { testAuth } from '../../../test/support/tokens';
import { createApiApp } from './app';

// No request here reaches the database: preflights and refused tokens are answered before it.
const pool = createPool({ url: 'postgres://postgres@127.0.0.1:1/unused', max: 1 });
const log = createLogger({ name: 'api-cors-test', level: 'silent' });
const appWith = (origins?: string[]) =>
  createApiApp({
    pool,
    bus: createMemoryBus(),
    auth: testAuth,
    log,
    registry: createRegistry('api'),
    ...(origins ? { config: { ALLOWED_ORIGINS: origins } } : {}),
  });

afterAll(() => pool.end());

describe('api CORS (ALLOWED_ORIGINS)', () => {
  const origin = 'http://localhost:5173';

  it('answers the preflight of a write from a listed origin', async () => {
    const res = await appWith([origin]).request('/api/agents', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,idempotency-key',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
  });

  it('lets the page read an error answer, so a refused write is not retried blindly', async () => {
    const res = await appWith([origin]).request('/api/agents', {
      method: 'POST',
      headers: { origin, authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  });

  it('allows no origin by default', async () => {
    const res = await appWith().request('/api/agents', {
      method: 'POST',
      headers: { origin, authorization: 'Bearer nope', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
