import { connect } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeHttp } from './http-bridge';
import { quietLog } from './test-harness';
import { type us_listen_socket, uWS } from './uws';

const LIMIT = 1024 * 1024;
let port = 0;
let listenSocket: us_listen_socket | undefined;
const seen: { aborted: number; calls: number } = { aborted: 0, calls: 0 };
let releaseSlow: (() => void) | undefined;

const api = new Hono();
api.post('/echo', async (c) => {
  const body = await c.req.json();
  return c.json({ body, query: c.req.query('q'), header: c.req.header('x-test') }, 201, { 'x-reply': 'yes' });
});
api.post('/size', async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
api.get('/slow', async (c) => {
  await new Promise<void>((r) => {
    releaseSlow = r;
  });
  return c.text('late');
});
api.get('/big', (c) => c.text('z'.repeat(3 * 1024 * 1024)));

beforeAll(async () => {
  const app = uWS.App();
  app.any('/*', (res, req) =>
    bridgeHttp(
      res,
      req,
      (request) => {
        seen.calls++;
        if (new URL(request.url).pathname === '/boom') throw new Error('kaboom');
        request.signal.addEventListener('abort', () => seen.aborted++);
        return api.fetch(request);
      },
      { maxBodyBytes: LIMIT, log: quietLog },
    ),
  );
  await new Promise<void>((resolve) =>
    app.listen(0, (socket) => {
      listenSocket = socket || undefined;
      port = uWS.us_socket_local_port(socket as never);
      resolve();
    }),
  );
});
afterAll(() => {
  if (listenSocket) uWS.us_listen_socket_close(listenSocket);
});

const url = (path: string) => `http://127.0.0.1:${port}${path}`;

describe('uWS → fetch bridge', () => {
  it('passes method, path, query, headers and a JSON body, and returns status, headers and body', async () => {
    const res = await fetch(url('/echo?q=1%202'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-test': 'hello' },
      body: JSON.stringify({ a: [1, 2, 3], s: 'ünïcødé' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-reply')).toBe('yes');
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ body: { a: [1, 2, 3], s: 'ünïcødé' }, query: '1 2', header: 'hello' });
  });

  it('reads a large body arriving in many chunks, with and without content-length', async () => {
    const big = new Uint8Array(LIMIT - 10).fill(65);
    const res = await fetch(url('/size'), { method: 'POST', body: big });
    expect(await res.json()).toEqual({ bytes: big.byteLength });
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 16; i++) controller.enqueue(new Uint8Array(32 * 1024).fill(66));
        controller.close();
      },
    });
    const chunked = await fetch(url('/size'), {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await chunked.json()).toEqual({ bytes: 16 * 32 * 1024 });
  });

  it('answers a body over the limit with 413 without calling the handler', async () => {
    const before = seen.calls;
    const declared = await fetch(url('/size'), { method: 'POST', body: new Uint8Array(LIMIT + 1) });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ error: { code: 'payload_too_large' } });
    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 40; i++) controller.enqueue(new Uint8Array(64 * 1024));
        controller.close();
      },
    });
    const chunked = await fetch(url('/size'), {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit).catch((err: Error) => err);
    if (chunked instanceof Response) expect(chunked.status).toBe(413);
    expect(seen.calls).toBe(before);
  });

  it('turns a throwing handler into a JSON 500 without a stack trace', async () => {
    const res = await fetch(url('/boom'));
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'internal' } });
    expect(text).not.toMatch(/kaboom|at /);
  });

  it('serves a large response body', async () => {
    const res = await fetch(url('/big'));
    expect((await res.text()).length).toBe(3 * 1024 * 1024);
  });

  it('survives requests aborted mid-body and mid-handler, and keeps serving', async () => {
    // Headers and half a body, then the client vanishes.
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write('POST /size HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n');
        socket.write('a'.repeat(500));
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50);
      });
    });
    // A handler still working when the client goes: the abort reaches it, nothing is written after.
    const controller = new AbortController();
    const pending = fetch(url('/slow'), { signal: controller.signal }).catch(() => 'aborted');
    await waitUntil(() => releaseSlow !== undefined);
    controller.abort();
    expect(await pending).toBe('aborted');
    await waitUntil(() => seen.aborted > 0);
    releaseSlow?.();
    await new Promise((r) => setTimeout(r, 50));
    const res = await fetch(url('/echo'), { method: 'POST', body: '{"ok":true}' });
    expect(res.status).toBe(201);
  });
});

async function waitUntil(check: () => boolean) {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}
