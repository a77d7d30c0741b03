import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpDeltaSource } from './http-delta-source';

// A stand-in HTTP server with canned answers: this tests the HTTP mapping only (the delta
// service's own tests cover what it reads from Postgres).
let server: Server;
const models = { Agent: [], Message: [], Payment: [], CodeChange: [], ReasoningStep: [], ToolCall: [] };
let base = '';
const requests: { url: string; auth: string | undefined; cacheControl?: string; scopes?: number }[] = [];
const event = (id: number) => ({
  id,
  scope: 'agent:a',
  model: 'Message',
  model_id: '7f1c2b9e-3f4d-4c5b-9a8e-1d2c3b4a5f60',
  action: 'insert',
  data: { content: 'x' },
  mutationId: null,
  created_at: new Date(0).toISOString(),
});

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({
      url: req.url ?? '',
      auth: req.headers.authorization,
      cacheControl: req.headers['cache-control'],
    });
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    };
    const scope = url.searchParams.get('scope');
    if (url.pathname === '/sync/heads' && req.method === 'POST') {
      let raw = '';
      req.on('data', (c) => {
        raw += c;
      });
      req.on('end', () => {
        const { scopes } = JSON.parse(raw) as { scopes: string[] };
        requests.at(-1)!.scopes = scopes.length;
        send(200, { heads: Object.fromEntries(scopes.map((s, i) => [s, i + 1])) });
      });
      return;
    }
    if (scope === 'agent:gone') return send(410, { error: { code: 'reset_required', message: 'pruned' } });
    if (scope === 'agent:down') return send(503, { error: { code: 'unavailable', message: 'db down' } });
    if (scope === 'agent:garbled') return send(200, '{"scope": 1');
    if (scope === 'agent:wrong')
      return send(200, { scope, events: [{ id: 'one' }], latestSyncId: 1, hasMore: false });
    if (scope === 'agent:denied') return send(403, { error: { code: 'forbidden', message: 'no' } });
    if (url.pathname === '/sync/bootstrap') return send(200, { scope, models, lastSyncId: 4 });
    if (url.pathname === '/sync/delta') {
      return send(200, { scope, events: [event(3), event(4)], latestSyncId: 4, hasMore: false });
    }
    send(404, { error: { code: 'not_found', message: 'no' } });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const source = () => createHttpDeltaSource({ baseUrl: base, token: () => 'tok-123' });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err) => (err instanceof AppError ? err.code : 'not an AppError'),
  );

describe('createHttpDeltaSource', () => {
  it('reads bootstrap, delta and heads with the bearer token', async () => {
    const s = source();
    expect(await s.bootstrap('agent:a')).toMatchObject({ scope: 'agent:a', lastSyncId: 4 });
    const delta = await s.delta('agent:a', 2, 50);
    expect(delta.events.map((e) => e.id)).toEqual([3, 4]);
    expect(requests.at(-1)?.url).toBe('/sync/delta?scope=agent%3Aa&lastSyncId=2&limit=50');
    expect(requests.at(-1)?.auth).toBe('Bearer tok-123');
    const heads = await s.heads(['agent:a', 'agent:b']);
    expect([...heads]).toEqual([
      ['agent:a', 1],
      ['agent:b', 2],
    ]);
  });

  it('asks for a shared answer only when the caller accepts one, in whole seconds', async () => {
    const s = source();
    await s.delta('agent:a', 2);
    expect(requests.at(-1)?.cacheControl).toBeUndefined();
    await s.delta('agent:a', 2, undefined, { maxAgeMs: 10_000 });
    expect(requests.at(-1)?.cacheControl).toBe('max-age=10');
    await s.bootstrap('agent:a', { maxAgeMs: 1500 });
    expect(requests.at(-1)?.cacheControl).toBe('max-age=1');
    // Under a second cannot be said in HTTP's whole seconds: ask for a fresh read.
    await s.bootstrap('agent:a', { maxAgeMs: 999 });
    expect(requests.at(-1)?.cacheControl).toBeUndefined();
  });

  it('asks for many scopes by POST, at most 1000 per request', async () => {
    const scopes = Array.from({ length: 2500 }, (_, i) => `agent:${String(i).padStart(36, '0')}`);
    const before = requests.length;
    const heads = await source().heads(scopes);
    expect(heads.size).toBe(2500);
    expect(heads.get(scopes[1001]!)).toBe(2);
    expect(requests.slice(before).map((r) => r.scopes)).toEqual([1000, 1000, 500]);
  });

  it('maps 410 to reset_required, 5xx/unreachable/garbled answers to unavailable, refusals to internal', async () => {
    const s = source();
    expect(await codeOf(s.delta('agent:gone', 1))).toBe('reset_required');
    expect(await codeOf(s.delta('agent:down', 1))).toBe('unavailable');
    expect(await codeOf(s.delta('agent:garbled', 1))).toBe('unavailable');
    expect(await codeOf(s.delta('agent:wrong', 1))).toBe('unavailable');
    expect(await codeOf(s.bootstrap('agent:denied'))).toBe('internal');
    const nowhere = createHttpDeltaSource({ baseUrl: 'http://127.0.0.1:1', token: 't' });
    expect(await codeOf(nowhere.heads(['agent:a']))).toBe('unavailable');
  });
});
