import { createLogger, createPool, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { testAuth } from '../../../test/support/tokens';
import { createDeltaApp } from './app';
import { createDeltaReader } from './reader';

// No request here reaches the database: preflights and refused tokens are answered before it.
const pool = createPool({ url: 'postgres://postgres@127.0.0.1:1/unused', max: 1 });
const log = createLogger({ name: 'delta-cors-test', level: 'silent' });
const appWith = (allowedOrigins?: string[]) =>
  createDeltaApp({
    reader: createDeltaReader({ pool }),
    auth: testAuth,
    log,
    registry: createRegistry('delta'),
    ...(allowedOrigins ? { config: { allowedOrigins } } : {}),
  });

afterAll(() => pool.end());

describe('delta CORS (ALLOWED_ORIGINS)', () => {
  const origin = 'https://app.example';

  it('answers the preflight of a shared read and exposes Age', async () => {
    const app = appWith([origin]);
    const pre = await app.request('/sync/bootstrap?scope=org:1', {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization,cache-control',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Cache-Control/);
    const res = await app.request('/sync/bootstrap?scope=org:1', { headers: { origin } });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/Age/);
  });

  it('answers other origins, and everyone by default, without CORS headers', async () => {
    for (const app of [appWith([origin]), appWith()]) {
      const res = await app.request('/sync/delta?scope=org:1&lastSyncId=0', {
        headers: { origin: 'https://evil.example' },
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
    }
  });
});
