import { ErrorBody, StreamAck, StreamDone, type WriteResult } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { lineBody, lineReader } from '../../../test/support/ndjson';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness, type SendRequest } from '../test/api-harness';
import type { ApiAppConfig } from './app';

/**
 * The streaming upload of appends (`POST /api/<path>/<id>/append-stream`): NDJSON pieces in, acks
 * out, every piece offset-checked, pieces of one window committed as one append event.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_stream_upload' });
});
afterAll(async () => h?.close());

const encoder = new TextEncoder();

const piece = (offset: number, text: string) => ({ field: 'content', offset, text });

async function newMessage(content = ''): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', { agent_id: agent.id, role: 'assistant', content });
  return { id: ((await res.json()) as WriteResult).data.id as string, agentId: agent.id };
}

async function contentOf(id: string): Promise<string> {
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    id,
  ]);
  return rows[0]!.content;
}

async function appendTexts(agentId: string): Promise<string[]> {
  return (await h.events(`agent:${agentId}`))
    .filter((e) => e.action === 'append')
    .map((e) => (e.data as { text: string }).text);
}

const senders = new Map<string, SendRequest>();
function send(config: ApiAppConfig = {}): SendRequest {
  const key = JSON.stringify(config);
  let sender = senders.get(key);
  if (!sender) {
    sender = h.withConfig(config);
    senders.set(key, sender);
  }
  return sender;
}

/** Opens a stream to a message; the body stays open until `end()`. */
async function openStream(
  id: string,
  config: ApiAppConfig = {},
  init: { token?: string | null; contentType?: string; first?: unknown } = {},
) {
  const line = lineBody(init.first);
  const res = await send(config)('POST', `/api/messages/${id}/append-stream`, undefined, {
    raw: line.body,
    headers: { 'content-type': init.contentType ?? 'application/x-ndjson' },
    ...(init.token !== undefined ? { token: init.token } : {}),
  });
  return { res, line, out: res.status === 200 ? lineReader(res) : undefined };
}

/** A whole stream sent at once: its lines, then the end of the body; returns every answer line. */
async function streamAll(id: string, lines: unknown[], config: ApiAppConfig = {}) {
  const { res, line, out } = await openStream(id, config);
  expect(res.status).toBe(200);
  for (const l of lines) line.push(l);
  line.end();
  return out!.rest();
}

const WINDOW = { STREAM_COALESCE_MS: 60_000 };
const AT_ONCE = { STREAM_COALESCE_MS: 0 };

describe('append-stream', () => {
  it('commits the pieces of one window as one append event and acknowledges them', async () => {
    const m = await newMessage();
    const lines = await streamAll(m.id, [piece(0, 'Hel'), piece(3, 'lo'), piece(5, ' 😀')], WINDOW);
    expect(lines).toHaveLength(2);
    expect(StreamAck.parse(lines[0])).toEqual({ offset: 0, length: 8, syncId: 2 });
    expect(StreamDone.parse(lines[1])).toEqual({ done: true, length: 8 });
    expect(await contentOf(m.id)).toBe('Hello 😀');
    expect(await appendTexts(m.agentId)).toEqual(['Hello 😀']);
  });

  it('commits while the body is still open: a piece waits at most the window', async () => {
    const m = await newMessage();
    const { line, out } = await openStream(m.id, AT_ONCE);
    line.push(piece(0, 'one'));
    expect(await out!.next()).toEqual({ offset: 0, length: 3, syncId: 2 });
    expect(await contentOf(m.id)).toBe('one');
    line.push(piece(3, ' two'));
    expect(await out!.next()).toEqual({ offset: 3, length: 7, syncId: 3 });
    line.end();
    expect(await out!.rest()).toEqual([{ done: true, length: 7 }]);
    expect(await appendTexts(m.agentId)).toEqual(['one', ' two']);
  });

  it('resumes over text already there without doubling it (exact retries, split at the length)', async () => {
    const m = await newMessage('Hello');
    const before = await h.counts();
    // Everything already there: acknowledged, nothing written.
    const again = await streamAll(m.id, [piece(0, 'Hel'), piece(3, 'lo')], WINDOW);
    expect(again.at(-1)).toEqual({ done: true, length: 5 });
    expect(await h.counts()).toEqual(before);
    // The head already there, the tail new: one commit, the tail written once.
    const lines = await streamAll(m.id, [piece(0, 'Hel'), piece(3, 'lo'), piece(5, ' world')], WINDOW);
    expect(lines[0]).toMatchObject({ offset: 0, length: 11 });
    expect(await contentOf(m.id)).toBe('Hello world');
    expect(await appendTexts(m.agentId)).toEqual([' world']);
  });

  it('refuses a piece that does not land at the field length with the contract offset_mismatch', async () => {
    const m = await newMessage('abc');
    const before = await h.counts();
    for (const first of [piece(5, 'x'), piece(1, 'bz'), piece(2, 'cd')]) {
      const lines = await streamAll(m.id, [first, piece(first.offset + first.text.length, 'more')], WINDOW);
      expect(lines, JSON.stringify(first)).toHaveLength(1);
      expect(ErrorBody.parse(lines[0]).error).toMatchObject({
        code: 'offset_mismatch',
        details: { length: 3 },
      });
    }
    expect(await h.counts()).toEqual(before);
    expect(await contentOf(m.id)).toBe('abc');
  });

  it('refuses a gap or an overlap between two pieces of the stream, after committing those before', async () => {
    const m = await newMessage();
    const lines = await streamAll(
      m.id,
      [piece(0, 'ab'), piece(2, 'cd'), piece(5, 'x'), piece(6, 'y')],
      WINDOW,
    );
    expect(lines[0]).toEqual({ offset: 0, length: 4, syncId: 2 });
    expect(ErrorBody.parse(lines[1]).error).toMatchObject({
      code: 'offset_mismatch',
      details: { length: 4, line: 3 },
    });
    expect(lines).toHaveLength(2);
    expect(await contentOf(m.id)).toBe('abcd');
  });

  it.each([
    ['not JSON', '{"field":"content",', 'bad_request'],
    ['not an object', '[1,2]\n', 'invalid_body'],
    ['an unknown key', `${JSON.stringify({ ...piece(2, 'x'), extra: 1 })}\n`, 'invalid_body'],
    [
      'a field that takes no appends',
      `${JSON.stringify({ field: 'role', offset: 2, text: 'x' })}\n`,
      'invalid_body',
    ],
    [
      'another field than the first',
      `${JSON.stringify({ field: 'title', offset: 2, text: 'x' })}\n`,
      'invalid_body',
    ],
    ['a negative offset', `${JSON.stringify(piece(-1, 'x'))}\n`, 'invalid_body'],
    ['a NUL character', `${JSON.stringify(piece(2, 'a\u0000'))}\n`, 'invalid_body'],
    ['a lone surrogate', `${JSON.stringify(piece(2, '\ud83d'))}\n`, 'invalid_body'],
    ['invalid UTF-8', new Uint8Array([0xc3, 0x28, 0x0a]), 'bad_request'],
  ])('answers a line with %s by an error line, keeping the pieces before it', async (_name, bad, code) => {
    const m = await newMessage();
    const { line, out } = await openStream(m.id, WINDOW);
    line.push(piece(0, 'ok'));
    if (bad instanceof Uint8Array) line.bytes(bad);
    else line.push(bad);
    line.push(piece(2, 'never'));
    const lines = await out!.rest();
    expect(lines[0]).toMatchObject({ offset: 0, length: 2 });
    expect(lines.slice(1).map((l) => ErrorBody.parse(l).error.code)).toEqual([code]);
    expect(await contentOf(m.id)).toBe('ok');
    line.end();
  });

  it('limits each line to the body limit and the stream in all', async () => {
    const m = await newMessage();
    const small = { BODY_LIMIT_BYTES: 100 };
    const long = await streamAll(m.id, [piece(0, 'ok'), piece(2, 'x'.repeat(200))], { ...small, ...WINDOW });
    expect(ErrorBody.parse(long.at(-1)).error).toMatchObject({
      code: 'payload_too_large',
      details: { limit: 100 },
    });
    // A line that never ends is cut at the limit too, without waiting for its newline.
    const { line, out } = await openStream(m.id, small);
    line.push('{"field":"content","offset":2,"text":"');
    line.push('y'.repeat(200));
    expect(ErrorBody.parse(await out!.next()).error.code).toBe('payload_too_large');
    const total = await streamAll(
      m.id,
      Array.from({ length: 20 }, (_, i) => piece(2 + i * 10, '0123456789')),
      { ...WINDOW, APPEND_STREAM: { maxStreamBytes: 500 } },
    );
    expect(ErrorBody.parse(total.at(-1)).error).toMatchObject({
      code: 'payload_too_large',
      details: { limit: 500 },
    });
    expect((await contentOf(m.id)).startsWith('ok01234567890123456789')).toBe(true);
  });

  it('refuses before streaming: no token, a bad id, an unknown model, a JSON body', async () => {
    const m = await newMessage();
    expect((await openStream(m.id, {}, { token: null })).res.status).toBe(401);
    expect((await openStream(m.id, {}, { token: 'garbage' })).res.status).toBe(401);
    expect((await openStream(m.id, {}, { contentType: 'application/json' })).res.status).toBe(415);
    const bad = await send()('POST', '/api/messages/not-a-uuid/append-stream', undefined, {
      raw: 'x',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(bad.status).toBe(400);
    const unknown = await send()('POST', `/api/nothing/${m.id}/append-stream`, undefined, {
      raw: 'x',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(unknown.status).toBe(404);
    expect(await contentOf(m.id)).toBe('');
  });

  it('refuses a record outside the token, or missing, by an error line, writing nothing', async () => {
    const m = await newMessage();
    const before = await h.counts();
    const other = await tokenFor(['agent:00000000-0000-4000-8000-000000000000']);
    const { line, out } = await openStream(m.id, WINDOW, { token: other });
    line.push(piece(0, 'stolen'));
    line.end();
    expect((await out!.rest()).map((l) => ErrorBody.parse(l).error.code)).toEqual(['forbidden']);
    const missing = await streamAll('00000000-0000-4000-8000-00000000abcd', [piece(0, 'x')], WINDOW);
    expect(missing.map((l) => ErrorBody.parse(l).error.code)).toEqual(['not_found']);
    expect(await h.counts()).toEqual(before);
  });

  it('charges the rate limit per commit and ends the stream with rate_limited when it is spent', async () => {
    const m = await newMessage();
    const { line, out } = await openStream(m.id, {
      ...AT_ONCE,
      // A refill far slower than any test: the bucket holds exactly the open and one commit.
      RATE_LIMIT_PER_SECOND: 0.001,
      RATE_LIMIT_BURST: 2,
    });
    line.push(piece(0, 'a'));
    expect(await out!.next()).toMatchObject({ offset: 0, length: 1 });
    line.push(piece(1, 'b'));
    const error = ErrorBody.parse(await out!.next()).error;
    expect(error).toMatchObject({ code: 'rate_limited', details: { retryAfterSeconds: expect.any(Number) } });
    expect(await out!.next()).toBeUndefined();
    expect(await contentOf(m.id)).toBe('a');
    line.end();
  });

  it('ends the stream with unauthorized once its token expires, committing nothing after', async () => {
    const m = await newMessage();
    const { line, out } = await openStream(m.id, AT_ONCE, { token: await tokenFor(['*'], 'user-1', 60) });
    line.push(piece(0, 'before'));
    expect(await out!.next()).toMatchObject({ offset: 0, length: 6 });
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 120_000);
      line.push(piece(6, ' after'));
      expect(ErrorBody.parse(await out!.next()).error.code).toBe('unauthorized');
    } finally {
      vi.useRealTimers();
    }
    expect(await contentOf(m.id)).toBe('before');
    line.end();
  });

  it('ends an idle stream cleanly with the length reached', async () => {
    const m = await newMessage();
    // The piece travels with the request: the idle clock starts when the stream does.
    const { out } = await openStream(
      m.id,
      { ...AT_ONCE, APPEND_STREAM: { idleMs: 50 } },
      { first: piece(0, 'quiet') },
    );
    expect(await out!.rest()).toEqual([
      { offset: 0, length: 5, syncId: 2 },
      { done: true, length: 5 },
    ]);
  });

  it('keeps every valid piece and refuses the first bad line, whatever the chunking (fast-check)', async () => {
    const m = await newMessage();
    let length = 0;
    let content = '';
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ unit: 'grapheme', maxLength: 6 }).filter((t) => !t.includes('\u0000')),
          { maxLength: 8 },
        ),
        fc.option(
          fc.oneof(fc.string({ maxLength: 12 }), fc.constant('{"field":"content","offset":-1,"text":"x"}')),
        ),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }),
        async (texts, garbage, cuts) => {
          const lines: string[] = [];
          let at = length;
          for (const text of texts) {
            lines.push(`${JSON.stringify(piece(at, text))}\n`);
            at += text.length;
          }
          const bad = garbage !== null && garbage.replaceAll('\n', ' ').trim() !== '';
          const garbageAt = Math.floor(lines.length / 2);
          if (garbage !== null) lines.splice(garbageAt, 0, `${garbage.replaceAll('\n', ' ')}\n`);
          const bytes = encoder.encode(lines.join(''));
          const { line, out } = await openStream(m.id, WINDOW);
          for (let i = 0, c = 0; i < bytes.length; c++) {
            const size = cuts[c % cuts.length]!;
            line.bytes(bytes.slice(i, i + size));
            i += size;
          }
          line.end();
          const answers = await out!.rest();
          const last = answers.at(-1)!;
          if (bad) {
            expect(['bad_request', 'invalid_body']).toContain(ErrorBody.parse(last).error.code);
            expect(await contentOf(m.id)).toBe(content + texts.slice(0, garbageAt).join(''));
          } else {
            expect(StreamDone.parse(last)).toEqual({ done: true, ...(texts.length ? { length: at } : {}) });
            expect(await contentOf(m.id)).toBe(content + texts.join(''));
          }
          content = await contentOf(m.id);
          length = content.length;
        },
      ),
      { numRuns: 40 },
    );
  });
});
