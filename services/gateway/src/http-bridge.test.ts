import { EventEmitter, once } from 'node:events';
import { connect } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quietLog } from '../test/support/gateway-harness';
import { bridgeHttp, INTERNAL_ORIGIN } from './http-bridge';
import { type HttpResponse, type us_listen_socket, uWS } from './uws';

const LIMIT = 1024 * 1024;
let port = 0;
let listenSocket: us_listen_socket | undefined;
const seen = { aborted: 0, calls: 0, authenticated: 0, paused: 0 };
/**
 * What the server side did, as it happens ('authenticate', 'slow', 'aborted', 'handled'): the
 * tests wait for these instead of sleeping.
 */
const server = new EventEmitter();
const GOOD_TOKEN = 'good-token';
const authorization = { authorization: `Bearer ${GOOD_TOKEN}` };
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
    server.emit('slow');
  });
  return c.text('late');
});
api.get('/big', (c) => c.text('z'.repeat(3 * 1024 * 1024)));
api.get('/where', (c) => c.json({ url: c.req.url, host: c.req.header('host') }));
/** Streamed (see `streamsBody` below): reads nothing until the bridge has paused the socket. */
api.post('/stream/size', async (c) => {
  const before = seen.paused;
  while (seen.paused === before) await once(server, 'paused');
  let bytes = 0;
  const reader = c.req.raw.body!.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) bytes += read.value.byteLength;
  return c.json({ bytes });
});
/** An NDJSON answer whose second line is made only once the client has read the first. */
api.get('/lines', () => {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode('{"n":1}\n'));
      server.once('next', () => {
        controller.enqueue(encoder.encode('{"n":2}\n'));
        controller.close();
      });
    },
  });
  return new Response(body, { headers: { 'content-type': 'application/x-ndjson' } });
});
/** 16 MiB of NDJSON, more than a socket takes at once: the bridge must wait for onWritable. */
api.get('/many-lines', () => {
  const line = new TextEncoder().encode(`${JSON.stringify({ pad: 'p'.repeat(1000) })}\n`);
  let left = 16 * 1024;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(line);
      if (--left === 0) controller.close();
    },
  });
  return new Response(body, { headers: { 'content-type': 'application/x-ndjson' } });
});

/**
 * The uWS response as the bridge sees it, counting its `pause` and `onWritable` calls (the
 * backpressure the streamed paths must apply) and reporting them as events.
 */
function observed(res: HttpResponse): HttpResponse {
  return new Proxy(res, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (key === 'pause') {
          seen.paused++;
          server.emit('paused');
        }
        if (key === 'onWritable') server.emit('backpressure');
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

beforeAll(async () => {
  const app = uWS.App();
  app.any('/*', (res, req) =>
    bridgeHttp(
      observed(res),
      req,
      (request) => {
        seen.calls++;
        if (new URL(request.url).pathname === '/boom') throw new Error('kaboom');
        request.signal.addEventListener('abort', () => {
          seen.aborted++;
          server.emit('aborted');
        });
        return Promise.resolve(api.fetch(request)).finally(() => server.emit('handled'));
      },
      {
        maxBodyBytes: LIMIT,
        log: quietLog,
        streamsBody: (method, path) => method === 'POST' && path.startsWith('/stream/'),
        authenticate: async (token) => {
          seen.authenticated++;
          server.emit('authenticate');
          // Answers on a later turn of the event loop, as a real check may: the body keeps arriving.
          await new Promise((r) => setImmediate(r));
          return token === GOOD_TOKEN;
        },
      },
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
      headers: { 'content-type': 'application/json', 'x-test': 'hello', ...authorization },
      body: JSON.stringify({ a: [1, 2, 3], s: 'ünïcødé' }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-reply')).toBe('yes');
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toEqual({ body: { a: [1, 2, 3], s: 'ünïcødé' }, query: '1 2', header: 'hello' });
  });

  it('reads a large body arriving in many chunks, with and without content-length', async () => {
    const big = new Uint8Array(LIMIT - 10).fill(65);
    const res = await fetch(url('/size'), { method: 'POST', body: big, headers: authorization });
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
      headers: authorization,
    } as RequestInit);
    expect(await chunked.json()).toEqual({ bytes: 16 * 32 * 1024 });
  });

  it('answers a body over the limit with 413 without calling the handler', async () => {
    const before = seen.calls;
    const declared = await fetch(url('/size'), {
      method: 'POST',
      body: new Uint8Array(LIMIT + 1),
      headers: authorization,
    });
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
      headers: authorization,
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
    // Headers (with a good token) and half a body; once the server is checking the token, the
    // client vanishes: the handler never sees the incomplete body.
    const calls = seen.calls;
    const checking = once(server, 'authenticate');
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /size HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${GOOD_TOKEN}\r\ncontent-length: 1000\r\n\r\n`,
      );
      socket.write('a'.repeat(500));
    });
    await checking;
    socket.destroy();
    // A handler still working when the client goes: the abort reaches it, nothing is written after.
    const slow = once(server, 'slow');
    const controller = new AbortController();
    const pending = fetch(url('/slow'), { signal: controller.signal }).catch(() => 'aborted');
    await slow;
    const aborted = once(server, 'aborted');
    controller.abort();
    expect(await pending).toBe('aborted');
    await aborted;
    expect(seen.aborted).toBe(1);
    const handled = once(server, 'handled');
    releaseSlow?.();
    await handled;
    expect(seen.calls).toBe(calls + 1);
    const res = await fetch(url('/echo'), { method: 'POST', body: '{"ok":true}', headers: authorization });
    expect(res.status).toBe(201);
  });

  it('refuses a body without a bearer token at once, and with a bad one, never calling the handler', async () => {
    const calls = seen.calls;
    const checks = seen.authenticated;
    const anonymous = await rawRequest(
      `POST /size HTTP/1.1\r\nhost: x\r\ncontent-length: ${LIMIT}\r\n\r\n${'a'.repeat(1000)}`,
    );
    expect(anonymous.status).toBe(401);
    expect(JSON.parse(anonymous.body)).toMatchObject({ error: { code: 'unauthorized' } });
    // Refused on the missing header alone: no token check, no body read.
    expect(seen.authenticated).toBe(checks);
    const bad = await fetch(url('/size'), {
      method: 'POST',
      body: new Uint8Array(64 * 1024),
      headers: { authorization: 'Bearer forged' },
    }).catch((err: Error) => err);
    if (bad instanceof Response) {
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ error: { code: 'unauthorized' } });
    }
    expect(seen.authenticated).toBe(checks + 1);
    expect(seen.calls).toBe(calls);
    expect((await fetch(url('/big'))).status).toBe(200);
  });

  it('streams a body the options name, past the body limit, pausing the socket while it is unread', async () => {
    const size = 4 * LIMIT;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < size / (64 * 1024); i++) controller.enqueue(new Uint8Array(64 * 1024).fill(67));
        controller.close();
      },
    });
    const res = await fetch(url('/stream/size'), {
      method: 'POST',
      body,
      duplex: 'half',
      headers: authorization,
    } as RequestInit);
    expect(await res.json()).toEqual({ bytes: size });
    expect(seen.paused).toBeGreaterThan(0);
  });

  it('refuses a streamed body without a bearer token, or with a bad one, never calling the handler', async () => {
    const calls = seen.calls;
    const anonymous = await rawRequest(
      'POST /stream/size HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n',
    );
    expect(anonymous.status).toBe(401);
    const bad = await rawRequest(
      'POST /stream/size HTTP/1.1\r\nhost: x\r\nauthorization: Bearer forged\r\n' +
        'transfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n',
    );
    expect(bad.status).toBe(401);
    expect(JSON.parse(bad.body)).toMatchObject({ error: { code: 'unauthorized' } });
    expect(seen.calls).toBe(calls);
  });

  it('writes an NDJSON answer as it streams, and waits for onWritable under backpressure', async () => {
    const res = await fetch(url('/lines'));
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    // The first line arrives while the second does not exist yet.
    expect((await reader.read()).value).toBe('{"n":1}\n');
    server.emit('next');
    expect((await reader.read()).value).toBe('{"n":2}\n');
    expect((await reader.read()).done).toBe(true);

    const backpressure = once(server, 'backpressure');
    const many = await fetch(url('/many-lines'));
    await backpressure;
    expect((await many.text()).length).toBe(16 * 1024 * 1011);
  });

  it('builds the URL from a fixed origin: the Host header cannot change the path or query', async () => {
    const answer = await rawRequest(
      'GET /where?q=1 HTTP/1.1\r\nhost: evil.example/sync/bootstrap?scope=org:x#\r\n\r\n',
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({
      url: `${INTERNAL_ORIGIN}/where?q=1`,
      host: 'evil.example/sync/bootstrap?scope=org:x#',
    });
  });

  it('answers odd requests (non-UTF-8 header bytes, an absolute-form target) and keeps serving', async () => {
    const utf8Header = await rawRequest(
      Buffer.concat([
        Buffer.from('GET /where HTTP/1.1\r\nhost: x\r\nx-name: '),
        Buffer.from('\u4e2d\u6587', 'utf8'),
        Buffer.from('\r\n\r\n'),
      ]),
    );
    // uWS hands such a value over as a (lossy) string; whatever it is, the answer is an answer.
    expect([200, 400]).toContain(utf8Header.status);
    expect(JSON.parse(utf8Header.body)).toBeTypeOf('object');
    const absolute = await rawRequest('GET http://other.example/where HTTP/1.1\r\nhost: x\r\n\r\n');
    // uWS may drop such a request itself (0); when it reaches the bridge it is refused (400).
    expect([0, 400]).toContain(absolute.status);
    expect((await fetch(url('/where'))).status).toBe(200);
  });
});

/** Sends raw bytes and reads one response (status and body), for what fetch refuses to send. */
function rawRequest(raw: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(raw));
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1');
      const head = data.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(data.slice(0, head))?.[1] ?? 0);
      if (data.length >= head + 4 + length) {
        socket.destroy();
        resolve({ status: Number(data.slice(9, 12)), body: data.slice(head + 4, head + 4 + length) });
      }
    });
    socket.on('error', reject);
    // Closed without a complete answer: status 0.
    socket.on('close', () => resolve({ status: 0, body: '' }));
  });
}
