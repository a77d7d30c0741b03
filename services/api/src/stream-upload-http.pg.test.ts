import type { AddressInfo } from 'node:net';
import { type HttpBindings, serve } from '@hono/node-server';
import type { WriteResult } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * The streaming upload over a real socket (@hono/node-server, as a worker serves it): a client
 * that goes away mid-stream, a body that never ends, a body that trickles forever. The worker
 * ends each of them, keeps what arrived whole, and a writer resumes exactly.
 */
const ORIGIN = 'https://app.example';
/** Text the app wrote straight to a Node response (the acknowledgements' direct path). */
const textWrites: string[] = [];
let h: ApiHarness;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  h = await createApiHarness({
    label: 'api_stream_http',
    // Idle and age limits far above a loaded machine's round trip, far below the test timeout.
    config: {
      STREAM_COALESCE_MS: 0,
      APPEND_STREAM: { idleMs: 2_000, maxDurationMs: 6_000 },
      ALLOWED_ORIGINS: [ORIGIN],
    },
  });
  const server = serve({
    // Records what the app writes to each Node response as text (the web stream writes bytes).
    fetch: (request, env) => {
      const outgoing = (env as HttpBindings).outgoing;
      const write = outgoing.write.bind(outgoing) as (...args: unknown[]) => boolean;
      outgoing.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (typeof chunk === 'string') textWrites.push(chunk);
        return write(chunk, ...rest);
      }) as typeof outgoing.write;
      return h.app.fetch(request, env);
    },
    port: 0,
    hostname: '127.0.0.1',
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = () => new Promise<void>((resolve) => server.close(() => resolve()));
});
afterAll(async () => {
  await close?.();
  await h?.close();
});

const encoder = new TextEncoder();
const line = (offset: number, text: string) =>
  encoder.encode(`${JSON.stringify({ field: 'content', offset, text })}\n`);

async function newMessage(): Promise<string> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', {
    agent_id: agent.id,
    role: 'assistant',
    content: '',
  });
  return ((await res.json()) as WriteResult).data.id as string;
}

async function contentOf(id: string): Promise<string> {
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    id,
  ]);
  return rows[0]!.content;
}

/**
 * A stream over the socket: the body is written by the test, the answer read line by line.
 * `first` goes out with the request: undici sends the request head only with the first chunk.
 */
async function open(
  id: string,
  first: Uint8Array,
  signal?: AbortSignal,
  extraHeaders: Record<string, string> = {},
) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
      c.enqueue(first);
    },
  });
  const res = await fetch(`${base}/api/messages/${id}/append-stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${h.token}`, 'content-type': 'application/x-ndjson', ...extraHeaders },
    body,
    duplex: 'half',
    ...(signal ? { signal } : {}),
  } as RequestInit);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-ndjson');
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    headers: res.headers,
    send: (bytes: Uint8Array) => controller.enqueue(bytes),
    end: () => controller.close(),
    async next(): Promise<Record<string, unknown> | undefined> {
      for (;;) {
        const nl = buffered.indexOf('\n');
        if (nl >= 0) {
          const text = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(text) as Record<string, unknown>;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffered += decoder.decode(value, { stream: true });
      }
    },
  };
}

describe('append-stream over a socket', () => {
  it('writes acknowledgements straight to the Node response, after the head the middleware set', async () => {
    const id = await newMessage();
    textWrites.length = 0;
    const stream = await open(id, line(0, 'one'), undefined, {
      origin: ORIGIN,
      'x-request-id': 'direct-acks-1',
    });
    expect(stream.headers.get('x-request-id')).toBe('direct-acks-1');
    expect(stream.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(stream.headers.get('cache-control')).toBe('no-store');
    const answers: Record<string, unknown>[] = [];
    answers.push((await stream.next())!);
    let offset = 3;
    for (const piece of [' two', ' three', ' four']) {
      stream.send(line(offset, piece));
      offset += piece.length;
      answers.push((await stream.next())!);
    }
    stream.end();
    for (let a = await stream.next(); a; a = await stream.next()) answers.push(a);
    expect(answers.map((a) => a.length)).toEqual([3, 7, 13, 18, 18]);
    expect(answers.at(-1)).toEqual({ done: true, length: 18 });
    expect(await contentOf(id)).toBe('one two three four');
    // The first acknowledgement may still travel the web stream (the head is not out yet when it
    // is sent); the later ones, and the closing line, are written to the response directly.
    expect(textWrites.filter((t) => t.includes('"length"')).length).toBeGreaterThanOrEqual(3);
    expect(textWrites.at(-1)).toBe('{"done":true,"length":18}\n');
  });

  it('answers hostile lines on the Node read path with one error line, keeping what came before', async () => {
    // After one good piece (so the hand check of common lines is armed): any line (JSON values,
    // near-miss pieces, raw bytes, split across chunks) ends the stream with `done` or an error
    // line, the worker keeps serving, and the record holds exactly the pieces acknowledged.
    const nearMiss = fc.record(
      {
        field: fc.oneof(fc.constant('content'), fc.constant('role'), fc.jsonValue({ maxDepth: 1 })),
        offset: fc.oneof(fc.constant(3), fc.double(), fc.integer(), fc.constant(2 ** 31), fc.string()),
        text: fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })),
        extra: fc.jsonValue({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    );
    const hostileLine = fc.oneof(
      nearMiss.map((v) => encoder.encode(`${JSON.stringify(v)}\n`)),
      fc.jsonValue({ maxDepth: 3 }).map((v) => encoder.encode(`${JSON.stringify(v)}\n`)),
      fc.uint8Array({ maxLength: 64 }),
    );
    await fc.assert(
      fc.asyncProperty(hostileLine, fc.nat({ max: 64 }), async (bytes, cut) => {
        const id = await newMessage();
        const stream = await open(id, line(0, 'one'));
        expect(await stream.next()).toMatchObject({ length: 3 });
        const at = Math.min(cut, bytes.length);
        stream.send(bytes.subarray(0, at));
        stream.send(bytes.subarray(at));
        stream.end();
        const answers: Record<string, unknown>[] = [];
        for (let a = await stream.next(); a; a = await stream.next()) answers.push(a);
        const last = answers.at(-1)!;
        expect(last.done === true || typeof (last.error as { code?: unknown })?.code === 'string').toBe(true);
        const acked = answers.reduce((n, a) => (typeof a.length === 'number' ? Math.max(n, a.length) : n), 3);
        expect((await contentOf(id)).length).toBe(acked);
      }),
      { numRuns: 40 },
    );
    // The worker still serves a clean stream.
    const id = await newMessage();
    const stream = await open(id, line(0, 'ok'));
    stream.end();
    expect(await stream.next()).toMatchObject({ length: 2 });
  }, 120_000);

  it('survives a client that goes away mid-stream; the resumed stream neither doubles nor loses', async () => {
    const id = await newMessage();
    const abort = new AbortController();
    const first = await open(id, line(0, 'one'), abort.signal);
    expect(await first.next()).toMatchObject({ offset: 0, length: 3 });
    first.send(line(3, ' two'));
    abort.abort();
    await expect(first.next()).rejects.toThrow();
    // The writer resumes from the acknowledged length with the same pieces, whether or not the
    // worker committed ' two' before the connection went.
    const second = await open(id, line(3, ' two'));
    second.send(line(7, ' three'));
    second.end();
    const answers: Record<string, unknown>[] = [];
    for (let a = await second.next(); a; a = await second.next()) answers.push(a);
    expect(answers.at(-1)).toEqual({ done: true, length: 13 });
    expect(await contentOf(id)).toBe('one two three');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });

  it('ends a body that never ends once it is idle, keeping what it carried', async () => {
    const id = await newMessage();
    const s = await open(id, line(0, 'never ends'));
    expect(await s.next()).toMatchObject({ offset: 0, length: 10 });
    expect(await s.next()).toEqual({ done: true, length: 10 });
    expect(await s.next()).toBeUndefined();
    expect(await contentOf(id)).toBe('never ends');
  });

  it('ends a body that trickles forever once the stream is too old', async () => {
    const id = await newMessage();
    const s = await open(id, line(0, 'slow'));
    expect(await s.next()).toMatchObject({ length: 4 });
    // One byte of a line that never closes, more often than the idle limit: only the age cuts it.
    const trickle = setInterval(() => {
      try {
        s.send(encoder.encode('x'));
      } catch {
        clearInterval(trickle);
      }
    }, 20);
    try {
      expect(await s.next()).toEqual({ done: true, length: 4 });
      expect(await s.next()).toBeUndefined();
    } finally {
      clearInterval(trickle);
    }
    expect(await contentOf(id)).toBe('slow');
  });
});
