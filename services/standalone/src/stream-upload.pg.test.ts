import { connect } from 'node:net';
import { createStreamWriter } from '@openagents/sync-client';
import { APPEND_STREAM_CONTENT_TYPE } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lineBody, lineReader } from '../../../test/support/ndjson';
import { tokenFor } from '../../../test/support/tokens';
import { startTestStandalone } from '../test/test-server';

/*
 * The streaming upload (`POST /api/<path>/<id>/append-stream`, docs/api.md "Streaming upload")
 * through the standalone server's one uWS port: the bridge hands the body to the API as it
 * arrives and writes the acknowledgements as they come, so a Node writer streams here as it
 * does against a worker. A small BODY_LIMIT_BYTES keeps the over-long line cheap to send.
 */

const LINE_LIMIT = 16 * 1024;
const encoder = new TextEncoder();

let server: Awaited<ReturnType<typeof startTestStandalone>>['server'];
let close: () => Promise<void> = async () => {};
let base = '';
const org = crypto.randomUUID();
let token = '';

beforeAll(async () => {
  ({ server, close } = await startTestStandalone('sa_stream_upload', {
    BODY_LIMIT_BYTES: String(LINE_LIMIT),
  }));
  base = server.info().url;
  token = await tokenFor([`org:${org}`, 'agent:*']);
});
afterAll(() => close());

async function post(path: string, body: unknown): Promise<{ id: string }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { data: { id: string } }).data;
}

/** An empty assistant message of a new agent, ready to stream into. */
async function newMessage(): Promise<{ id: string; agentId: string }> {
  const agent = await post('/api/agents', { org_id: org, name: 'streamer' });
  const message = await post('/api/messages', { agent_id: agent.id, role: 'assistant', content: '' });
  return { id: message.id, agentId: agent.id };
}

/** The message's content as a viewer's bootstrap reads it. */
async function bootContent(m: { id: string; agentId: string }): Promise<string> {
  const res = await fetch(`${base}/sync/bootstrap?scope=agent:${m.agentId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const body = (await res.json()) as { models: { Message?: { id: string; content: string }[] } };
  return body.models.Message?.find((row) => row.id === m.id)?.content ?? '';
}

const line = (offset: number, text: string) => `${JSON.stringify({ field: 'content', offset, text })}\n`;

function upload(m: { id: string }, body: ReadableStream<Uint8Array>, headers: Record<string, string> = {}) {
  return fetch(`${base}/api/messages/${m.id}/append-stream`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': APPEND_STREAM_CONTENT_TYPE, ...headers },
    body,
    duplex: 'half',
  } as RequestInit);
}

describe('streaming upload through the standalone bridge', () => {
  it('acknowledges each piece before the body ends, and a viewer reads the text meanwhile', async () => {
    const m = await newMessage();
    const body = lineBody();
    const pieces = ['Hello', ', ', 'wörld', ' 👋', '!'];
    body.push(line(0, pieces[0]!));
    // The answer's head leaves with the first acknowledgement.
    const res = await upload(m, body.body);
    expect(res.status).toBe(200);
    const { next } = lineReader(res);
    let offset = 0;
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) body.push(line(offset, piece));
      expect(await next()).toMatchObject({ offset, length: offset + piece.length });
      offset += piece.length;
    }
    // Still mid-body: everything is durable and readable already.
    expect(await bootContent(m)).toBe(pieces.join(''));
    body.end();
    expect(await next()).toEqual({ done: true, length: offset });
    expect(await next()).toBeUndefined();
  });

  it("carries the client's stream writer in Node on one upload, without falling back to appends", async () => {
    const m = await newMessage();
    const writer = createStreamWriter({
      baseUrl: base,
      token,
      model: 'Message',
      id: m.id,
      field: 'content',
      // `upload` left at its default ('auto'): the streaming upload in Node with its own fetch.
      coalesceMs: 0,
    });
    // Each piece is written once the previous one is durable, the body still open: a bridge that
    // buffered the body would acknowledge nothing, and the writer would fall back to appends.
    const pieces = Array.from({ length: 20 }, (_, i) => `token ${i} `);
    let written = '';
    for (const piece of pieces) {
      writer.write(piece);
      written += piece;
      await vi.waitFor(() => expect(writer.durableOffset).toBe(written.length), { timeout: 10_000 });
    }
    const result = await writer.end();
    expect(result).toMatchObject({ length: pieces.join('').length, requests: 1 });
    expect(await bootContent(m)).toBe(pieces.join(''));
  });

  it('refuses a streamed body without a token, or with a bad one, before any piece commits', async () => {
    const m = await newMessage();
    for (const authorization of [undefined, 'Bearer forged.token.value']) {
      const body = lineBody();
      body.push(line(0, 'nope'));
      body.end();
      const res = await upload(m, body.body, authorization ? { authorization } : { authorization: '' });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { code: 'unauthorized' } });
    }
    expect(await bootContent(m)).toBe('');
  });

  it('ends the stream at an over-long line as the API does, keeping the lines before it', async () => {
    const m = await newMessage();
    const body = lineBody();
    body.push(line(0, 'kept'));
    const res = await upload(m, body.body);
    const { next } = lineReader(res);
    expect(await next()).toMatchObject({ offset: 0, length: 4 });
    // More than BODY_LIMIT_BYTES without a newline: cut as soon as it crosses the limit.
    body.push(`{"field":"content","offset":4,"text":"${'x'.repeat(LINE_LIMIT)}`);
    expect(await next()).toMatchObject({ error: { code: 'payload_too_large', details: { line: 2 } } });
    expect(await next()).toBeUndefined();
    expect(await bootContent(m)).toBe('kept');
  });

  it('commits only the whole lines of a client that goes away mid-line, and keeps serving', async () => {
    const m = await newMessage();
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;
    const head =
      `POST /api/messages/${m.id}/append-stream HTTP/1.1\r\nhost: ${new URL(base).host}\r\n` +
      `authorization: Bearer ${token}\r\ncontent-type: ${APPEND_STREAM_CONTENT_TYPE}\r\n` +
      'transfer-encoding: chunked\r\n\r\n';
    let answer = '';
    socket.on('data', (d: Buffer) => {
      answer += d.toString();
    });
    socket.write(head + chunk(line(0, 'one ')));
    // The first line is acknowledged: the API is reading the body.
    await vi.waitFor(() => expect(answer).toContain('"length":4'));
    // A whole line and half of the next, flushed to the kernel; then the connection is torn down
    // without the body's end.
    const rest = chunk(line(4, 'two ')) + chunk(line(8, 'three').slice(0, 20));
    await new Promise<void>((resolve) => socket.write(rest, () => resolve()));
    socket.destroy();
    await expect.poll(() => bootContent(m), { timeout: 10_000 }).toBe('one two ');
    const after = await newMessage();
    const body = lineBody();
    body.push(line(0, 'still here'));
    body.end();
    const res = await upload(after, body.body);
    expect(await res.text()).toContain('"done":true');
    expect(await bootContent(after)).toBe('still here');
    // Nothing unexpected was caught on the way (the bridge counts what it catches).
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).not.toMatch(/sync_gateway_handler_errors_total\{where="http"\} [1-9]/);
  });

  it('keeps a stream open through a pause longer than uWS idle timeout (10 s), as a reply that calls a tool', async () => {
    const m = await newMessage();
    const body = lineBody();
    body.push(line(0, 'before '));
    const res = await upload(m, body.body);
    const { next } = lineReader(res);
    expect(await next()).toMatchObject({ length: 7 });
    // The stimulus is idleness itself: 15 s of wall time without a byte either way (uWS checks
    // its idle timers every 4 s, so 10 s of silence cuts the request within 10-14 s).
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    body.push(line(7, 'after'));
    body.end();
    expect(await next()).toMatchObject({ offset: 7, length: 12 });
    expect(await next()).toEqual({ done: true, length: 12 });
  }, 30_000);

  it('gives the same text however the body is cut into chunks (property)', async () => {
    const text = 'Streaming ünïcødé 👋 through one port, piece by piece.';
    const ndjson = encoder.encode(
      Array.from({ length: 6 }, (_, i) => {
        const from = Math.floor((text.length * i) / 6);
        return line(from, text.slice(from, Math.floor((text.length * (i + 1)) / 6)));
      }).join(''),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: 1, max: ndjson.length - 1 }), { maxLength: 12 }),
        async (cuts) => {
          const m = await newMessage();
          const bounds = [0, ...cuts.sort((a, b) => a - b), ndjson.length];
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 1; i < bounds.length; i++)
                controller.enqueue(ndjson.slice(bounds[i - 1], bounds[i]));
              controller.close();
            },
          });
          const res = await upload(m, body);
          const answer = (await res.text())
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l));
          expect(answer.at(-1)).toEqual({ done: true, length: text.length });
          expect(await bootContent(m)).toBe(text);
        },
      ),
      { numRuns: 12 },
    );
  });
});
