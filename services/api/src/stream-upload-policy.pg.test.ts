import { ErrorBody, MAX_TEXT_LENGTH, StreamAck, type WriteResult } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import type { ApiAppConfig } from './app';

/**
 * The streaming upload's window policy (STREAM_COALESCE_PIECES) and its per-piece check after the
 * first line, which skips the schema for the common shape: whatever it lets through or refuses
 * must be exactly what the single append (`POST …/append`) would answer for the same body.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_stream_policy' });
});
afterAll(async () => h?.close());

const encoder = new TextEncoder();
const piece = (offset: number, text: string) => ({ field: 'content', offset, text });

async function newMessage(content = ''): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', { agent_id: agent.id, role: 'assistant', content });
  return { id: ((await res.json()) as WriteResult).data.id as string, agentId: agent.id };
}

/** A stream whose body the test writes line by line while it reads the answer line by line. */
async function openStream(id: string, config: ApiAppConfig) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
  });
  const res = await h.withConfig(config)('POST', `/api/messages/${id}/append-stream`, undefined, {
    raw: body,
    headers: { 'content-type': 'application/x-ndjson' },
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  return {
    push: (line: unknown) =>
      controller.enqueue(encoder.encode(typeof line === 'string' ? line : `${JSON.stringify(line)}\n`)),
    end: () => {
      try {
        controller.close();
      } catch {}
    },
    async next(): Promise<Record<string, unknown> | undefined> {
      for (;;) {
        const nl = buffered.indexOf('\n');
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line) as Record<string, unknown>;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffered += decoder.decode(value, { stream: true });
      }
    },
  };
}

describe('append-stream window policy', () => {
  it('commits a window once it holds STREAM_COALESCE_PIECES pieces, without waiting for its time', async () => {
    const { id, agentId } = await newMessage();
    // A window far longer than the test: only the piece count can close it while the body is open.
    const s = await openStream(id, { STREAM_COALESCE_MS: 600_000, STREAM_COALESCE_PIECES: 2 });
    s.push(piece(0, 'one'));
    s.push(piece(3, ' two'));
    expect(StreamAck.parse(await s.next())).toMatchObject({ offset: 0, length: 7 });
    s.push(piece(7, ' three'));
    s.push(piece(13, ' four'));
    expect(StreamAck.parse(await s.next())).toMatchObject({ offset: 7, length: 18 });
    s.end();
    expect(await s.next()).toEqual({ done: true, length: 18 });
    const texts = (await h.events(`agent:${agentId}`))
      .filter((e) => e.action === 'append')
      .map((e) => (e.data as { text: string }).text);
    expect(texts).toEqual(['one two', ' three four']);
  });
});

describe('append-stream pieces after the first', () => {
  it.each([
    ['a fractional offset', { field: 'content', offset: 2.5, text: 'x' }],
    ['an offset past 2^31 - 1', { field: 'content', offset: 2 ** 31, text: 'x' }],
    ['an offset given as a string', { field: 'content', offset: '2', text: 'x' }],
    ['a text that is not a string', { field: 'content', offset: 2, text: 5 }],
    ['no text', { field: 'content', offset: 2 }],
    ['a text longer than the limit', { field: 'content', offset: 2, text: 'x'.repeat(MAX_TEXT_LENGTH + 1) }],
    ['an unknown key', { field: 'content', offset: 2, text: 'x', more: true }],
    ['a null', null],
  ])('refuses %s exactly as the single append does', async (_name, body) => {
    const { id } = await newMessage('ok');
    const single = await h.request('POST', `/api/messages/${id}/append`, body);
    const alone = ErrorBody.parse(await single.json()).error;
    const streamed = await newMessage();
    const s = await openStream(streamed.id, { STREAM_COALESCE_MS: 0 });
    s.push(piece(0, 'ok'));
    expect(await s.next()).toMatchObject({ offset: 0, length: 2 });
    s.push(body === null ? 'null\n' : body);
    const line = await s.next();
    expect(ErrorBody.parse(line).error).toEqual(alone);
    s.end();
  });
});
