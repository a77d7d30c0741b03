import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { corsFor } from './cors';

function appWith(origins: string[]) {
  const app = new Hono();
  app.use('*', corsFor(origins));
  app.get('/sync/bootstrap', (c) => {
    c.header('Age', '3');
    return c.json({ ok: true });
  });
  return app;
}

const preflight = (origin: string) => ({
  method: 'OPTIONS',
  headers: {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, idempotency-key, content-type',
  },
});

describe('corsFor', () => {
  it('answers a listed origin: preflight with the allowed headers, responses exposing Age', async () => {
    const app = appWith(['http://localhost:5173']);
    const pre = await app.request('/api/agents', preflight('http://localhost:5173'));
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    const headers = pre.headers.get('access-control-allow-headers')?.toLowerCase().split(',');
    expect(headers).toEqual(
      expect.arrayContaining(['authorization', 'idempotency-key', 'content-type', 'cache-control']),
    );
    expect(pre.headers.get('access-control-allow-methods')).toContain('PATCH');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();

    const res = await app.request('/sync/bootstrap', { headers: { origin: 'http://localhost:5173' } });
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(res.headers.get('access-control-expose-headers')).toContain('Age');
    expect(res.headers.get('vary')).toContain('Origin');
  });

  it('gives an origin that is not listed no CORS header', async () => {
    const app = appWith(['http://localhost:5173']);
    const pre = await app.request('/api/agents', preflight('https://evil.example'));
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await app.request('/sync/bootstrap', { headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows nothing when the list is empty (the default)', async () => {
    const app = appWith([]);
    const pre = await app.request('/sync/bootstrap', preflight('http://localhost:5173'));
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await app.request('/sync/bootstrap', { headers: { origin: 'http://localhost:5173' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});
