import type { WriteResult } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../../../services/api/test/api-harness';
import { createStreamWriter, type StreamWriterOptions } from './stream-writer';
import { textInPieces } from './stream-writer-fixtures';

/*
 * The stream writer's streaming upload (`…/append-stream`) against the real mutation API over a
 * real Postgres database. Failures are injected around the app, never instead of it: an answer
 * cut after the server committed (the acks are lost, the text is there), a server without the
 * endpoint, a proxy that buffers the body.
 */

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'client_stream_upload', config: { STREAM_COALESCE_MS: 5 } });
});
afterAll(async () => h?.close());

const appFetch = ((input: string | URL | Request, init?: RequestInit) =>
  h.app.fetch(new Request(input, init))) as typeof fetch;

async function newMessage(): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', {
    agent_id: agent.id,
    role: 'assistant',
    content: '',
  });
  return { id: ((await res.json()) as WriteResult).data.id as string, agentId: agent.id };
}

async function stored(m: { id: string; agentId: string }) {
  const { rows } = await h.db.pool.query<{ content: string }>('SELECT content FROM messages WHERE id = $1', [
    m.id,
  ]);
  const events = (await h.events(`agent:${m.agentId}`)).filter(
    (e) => e.action === 'append' && e.model_id === m.id,
  );
  return { content: rows[0]!.content, pieces: events.map((e) => e.data as { offset: number; text: string }) };
}

/** Every event continues exactly where the previous one ended, and together they are the text. */
function expectContiguous(pieces: { offset: number; text: string }[], text: string) {
  let rebuilt = '';
  for (const p of pieces) {
    expect(p.offset).toBe(rebuilt.length);
    rebuilt += p.text;
  }
  expect(rebuilt).toBe(text);
}

const paths = (calls: string[]) => calls.map((u) => new URL(u).pathname.split('/').at(-1));

function writer(
  m: { id: string },
  fetchFn: typeof fetch,
  extra: Partial<StreamWriterOptions<'Message'>> = {},
) {
  return createStreamWriter({
    baseUrl: 'http://api.test',
    token: h.token,
    fetch: fetchFn,
    upload: 'stream',
    model: 'Message',
    id: m.id,
    field: 'content',
    backoff: { initialDelayMs: 2, maxDelayMs: 10 },
    ...extra,
  });
}

/** Waits until the writer has `n` more acknowledgements (an event, not a sleep). */
function acks(hooks: { appended?: () => void }) {
  let waiting: { n: number; resolve: () => void } | undefined;
  hooks.appended = () => {
    if (waiting && --waiting.n <= 0) waiting.resolve();
  };
  return (n: number) =>
    new Promise<void>((resolve) => {
      waiting = { n, resolve };
    });
}

describe('stream writer over the streaming upload', () => {
  it('streams a whole reply on one request, fewer events than pieces', async () => {
    const m = await newMessage();
    const { text, pieces } = textInPieces(7, 600);
    const calls: string[] = [];
    const hooks: { appended?: () => void } = {};
    const nextAcks = acks(hooks);
    const w = writer(
      m,
      (input, init) => {
        calls.push(String(input));
        return appFetch(input, init);
      },
      { hooks },
    );
    for (const [i, piece] of pieces.entries()) {
      w.write(piece);
      if (i % 50 === 49 && text.slice(w.durableOffset, w.offset).length > 1) await nextAcks(1);
    }
    const result = await w.end();
    expect(result).toMatchObject({ length: text.length, requests: 1 });
    expect(paths(calls)).toEqual(['append-stream']);
    const { content, pieces: events } = await stored(m);
    expect(Buffer.from(content)).toEqual(Buffer.from(text));
    expectContiguous(events, text);
    expect(events.length).toBeLessThan(pieces.length / 4);
  });

  it('resumes from the acknowledged length when answers are cut after the server committed', async () => {
    for (const seed of [1, 2, 3]) {
      const m = await newMessage();
      const { text, pieces } = textInPieces(seed, 500);
      let cuts = 0;
      let streams = 0;
      // Every stream's answer is cut after a few lines: the server goes on committing what it
      // read, the writer sees neither those acks nor `done`, reconnects and sends the unacknowledged
      // pieces again.
      const cutting = (async (input: string | URL | Request, init?: RequestInit) => {
        const res = await appFetch(input, init);
        const keep = 1 + (streams++ % 3);
        const reader = res.body!.getReader();
        let lines = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const { done, value } = await reader.read();
            if (done) return controller.close();
            lines += value.filter((b) => b === 10).length;
            if (lines > keep) {
              cuts++;
              void reader.cancel();
              return controller.error(new TypeError('terminated: other side closed'));
            }
            controller.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      }) as typeof fetch;
      const hooks: { appended?: () => void } = {};
      const nextAcks = acks(hooks);
      const w = writer(m, cutting, { hooks });
      for (const [i, piece] of pieces.entries()) {
        w.write(piece);
        if (i % 20 === 19 && text.slice(w.durableOffset, w.offset).length > 1) await nextAcks(1);
      }
      const result = await w.end();
      expect(cuts, `seed ${seed}`).toBeGreaterThan(2);
      expect(result.length).toBe(text.length);
      const { content, pieces: events } = await stored(m);
      expect(Buffer.from(content), `seed ${seed}`).toEqual(Buffer.from(text));
      expectContiguous(events, text);
    }
  });

  it('falls back to one append per batch when the server has no streaming upload', async () => {
    const m = await newMessage();
    const { text, pieces } = textInPieces(11, 200);
    const calls: string[] = [];
    const older = (async (input: string | URL | Request, init?: RequestInit) => {
      calls.push(String(input));
      if (String(input).endsWith('/append-stream')) {
        return new Response(JSON.stringify({ error: { code: 'not_found', message: 'No such route' } }), {
          status: 404,
        });
      }
      return appFetch(input, init);
    }) as typeof fetch;
    const w = writer(m, older);
    for (const piece of pieces) w.write(piece);
    const result = await w.end();
    expect(result.length).toBe(text.length);
    expect(paths(calls)[0]).toBe('append-stream');
    expect(
      paths(calls)
        .slice(1)
        .every((p) => p === 'append'),
    ).toBe(true);
    expect((await stored(m)).content).toBe(text);
  });

  it('falls back when no answer comes in time (a proxy that buffers the body), without doubling', async () => {
    const m = await newMessage();
    const { text, pieces } = textInPieces(12, 200);
    const calls: string[] = [];
    // The request reaches the worker (which commits what it reads) but its answer is held back
    // until the body ends, as a buffering proxy would.
    const buffering = (async (input: string | URL | Request, init?: RequestInit) => {
      calls.push(String(input));
      if (!String(input).endsWith('/append-stream')) return appFetch(input, init);
      const res = appFetch(input, init);
      return new Promise<Response>((resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        void res.then(async (r) => {
          const all = await r.text();
          resolve(new Response(all, { status: r.status }));
        });
      });
    }) as typeof fetch;
    const hooks: { appended?: () => void } = {};
    const nextAcks = acks(hooks);
    const w = writer(m, buffering, { openTimeoutMs: 30, hooks });
    const half = pieces.length / 2;
    for (const piece of pieces.slice(0, half)) w.write(piece);
    await nextAcks(1); // only once the writer gave up waiting and appends
    for (const piece of pieces.slice(half)) w.write(piece);
    const result = await w.end();
    expect(result.length).toBe(text.length);
    expect(paths(calls).filter((p) => p === 'append-stream')).toHaveLength(1);
    expect(paths(calls).at(-1)).toBe('append');
    const { content, pieces: events } = await stored(m);
    expect(Buffer.from(content)).toEqual(Buffer.from(text));
    expectContiguous(events, text);
  });

  it('fails for good on a refusal (another writer moved the field), as the append writer does', async () => {
    const m = await newMessage();
    await h.request('POST', `/api/messages/${m.id}/append`, { field: 'content', offset: 0, text: 'other' });
    const w = writer(m, appFetch);
    w.write('mine');
    await expect(w.end()).rejects.toMatchObject({ status: 409, code: 'offset_mismatch' });
    expect((await stored(m)).content).toBe('other');
  });
});
