import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SyncClosedError } from './errors';
import { createStreamWriter, type StreamWriterOptions } from './stream-writer';
import { createSyncClient } from './sync-client';

/*
 * The writer's client-side window (coalesceMs / coalescePieces) on a fake clock. The server side
 * is an in-memory endpoint that speaks the contract's two shapes: `…/append-stream` reads NDJSON
 * lines from the request body as they arrive and acknowledges each at once (a `done` line when
 * the body ends); `…/append` answers each request when the test says so (or at once). What is
 * checked is what the writer put on the wire and when.
 */

const ID = '6f1d3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f';
const AGENT = '00000000-0000-4000-8000-000000000001';

interface Sent {
  offset: number;
  text: string;
  /** The fake clock when the server read it. */
  at: number;
}

/** A fetch for both transports; `lines` are the streaming upload's, `appends` the append requests'. */
function fakeServer(options: { holdAppends?: boolean } = {}) {
  const lines: Sent[] = [];
  const appends: (Sent & { answer(): void })[] = [];
  let stored = '';
  let bodyEnded = 0;
  const encoder = new TextEncoder();
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    if (url.endsWith('/api/messages')) {
      const data = JSON.parse(String(init?.body)) as Record<string, unknown>;
      return new Response(JSON.stringify({ data, scope: `agent:${AGENT}`, syncId: 1 }), { status: 201 });
    }
    if (url.endsWith('/append')) {
      const { offset, text } = JSON.parse(String(init?.body)) as { offset: number; text: string };
      const ok = () => {
        if (offset === stored.length) stored += text;
        return new Response(
          JSON.stringify({ data: { id: ID, length: stored.length }, scope: `agent:${AGENT}`, syncId: 1 }),
        );
      };
      if (!options.holdAppends) {
        appends.push({ offset, text, at: Date.now(), answer: () => {} });
        return ok();
      }
      return new Promise<Response>((resolve) => {
        appends.push({ offset, text, at: Date.now(), answer: () => resolve(ok()) });
      });
    }
    // The streaming upload: an answer that acknowledges each line as it is read.
    let answer!: ReadableStreamDefaultController<Uint8Array>;
    const out = new ReadableStream<Uint8Array>({
      start: (c) => {
        answer = c;
      },
    });
    const send = (value: unknown) => answer.enqueue(encoder.encode(`${JSON.stringify(value)}\n`));
    const body = init?.body;
    if (!(body instanceof ReadableStream)) throw new TypeError('the streaming upload needs a body stream');
    void (async () => {
      const reader = (body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let buffered = '';
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
          const { offset, text } = JSON.parse(buffered.slice(0, nl)) as { offset: number; text: string };
          buffered = buffered.slice(nl + 1);
          lines.push({ offset, text, at: Date.now() });
          if (offset === stored.length) stored += text;
          send({ offset, length: stored.length, syncId: lines.length });
        }
      }
      bodyEnded++;
      send({ done: true, length: stored.length });
      answer.close();
    })();
    return new Response(out, { status: 200, headers: { 'content-type': 'application/x-ndjson' } });
  }) as typeof fetch;
  return { fetchFn, lines, appends, stored: () => stored, bodyEnded: () => bodyEnded };
}

function writer(fetchFn: typeof fetch, extra: Partial<StreamWriterOptions<'Message'>> = {}) {
  return createStreamWriter({
    baseUrl: 'http://sync.test',
    token: 'tok',
    fetch: fetchFn,
    upload: 'stream',
    model: 'Message',
    id: ID,
    field: 'content',
    backoff: { initialDelayMs: 10 },
    ...extra,
  });
}

/** Advances the fake clock, letting promises and due timers run. */
const tick = (ms = 0) => vi.advanceTimersByTimeAsync(ms);
const texts = (sent: Sent[]) => sent.map((s) => s.text);

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('stream writer window (streaming upload)', () => {
  it('sends every piece written in a window as ONE line when coalesceMs has passed since its first', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn); // the default window: 40 ms
    w.write('Hel');
    await tick(15);
    w.write('lo');
    await tick(15);
    w.write(',');
    await tick(9);
    expect(server.lines).toEqual([]); // 39 ms: still open
    expect(w.offset).toBe(6);
    await tick(1);
    expect(server.lines).toEqual([{ offset: 0, text: 'Hello,', at: 40 }]);
    expect(w.durableOffset).toBe(6);
    // The next piece opens the next window, from its own write.
    await tick(30);
    w.write(' wor');
    await tick(20);
    w.write('ld');
    await tick(19);
    expect(server.lines).toHaveLength(1);
    await tick(1);
    expect(server.lines.at(-1)).toEqual({ offset: 6, text: ' world', at: 110 });
    const result = await w.end();
    expect(result).toMatchObject({ length: 12, requests: 1 });
    expect(server.stored()).toBe('Hello, world');
  });

  it('closes a window early once it holds coalescePieces pieces', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn, { coalesceMs: 40, coalescePieces: 2 });
    w.write('a');
    await tick(10);
    expect(server.lines).toEqual([]);
    w.write('b'); // the second piece closes it at once, 30 ms early
    await tick();
    expect(server.lines).toEqual([{ offset: 0, text: 'ab', at: 10 }]);
    w.write('c'); // alone in its window: time closes it
    await tick(39);
    expect(server.lines).toHaveLength(1);
    await tick(1);
    expect(server.lines.at(-1)).toEqual({ offset: 2, text: 'c', at: 50 });
    await w.end();
  });

  it('closes a window early when the buffer reaches maxPieceLength', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn, { coalesceMs: 1_000, maxPieceLength: 4 });
    w.write('ab');
    await tick(5);
    w.write('cdef');
    await tick();
    expect(texts(server.lines)).toEqual(['abcd', 'ef']);
    await w.end();
  });

  it('end() sends what the window holds at once, and closes the upload', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn, { coalesceMs: 1_000 });
    w.write('last');
    await tick(5);
    const end = w.end();
    await tick();
    expect(server.lines).toEqual([{ offset: 0, text: 'last', at: 5 }]);
    await expect(end).resolves.toMatchObject({ length: 4, requests: 1 });
    expect(server.bodyEnded()).toBe(1);
  });

  it('close() cancels a pending window: nothing is sent, no timer is left', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn);
    w.write('a');
    await tick(40); // the upload is open
    w.write('never');
    expect(vi.getTimerCount()).toBe(1); // the window
    w.close();
    expect(vi.getTimerCount()).toBe(0);
    await expect(w.done).rejects.toBeInstanceOf(SyncClosedError);
    await tick(1_000);
    expect(texts(server.lines)).toEqual(['a']);
  });

  it('coalesceMs 0 sends a line per write, in the tick it was written', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn, { coalesceMs: 0 });
    for (const piece of ['a', 'b', 'c']) {
      w.write(piece);
      await tick();
    }
    expect(server.lines).toEqual([
      { offset: 0, text: 'a', at: 0 },
      { offset: 1, text: 'b', at: 0 },
      { offset: 2, text: 'c', at: 0 },
    ]);
    await w.end();
  });

  it('keeps an emoji whole across a window boundary', async () => {
    const server = fakeServer();
    const w = writer(server.fetchFn, { coalesceMs: 20 });
    w.write('a\ud83d');
    await tick(20);
    expect(texts(server.lines)).toEqual(['a']); // the half waits for its partner
    w.write('\ude00b');
    await tick(20);
    expect(texts(server.lines).join('')).toBe('a😀b');
    expect(texts(server.lines).slice(1)).toEqual(['😀b']);
    await w.end();
  });

  it('rejects a negative or non-finite window', () => {
    const { fetchFn } = fakeServer();
    expect(() => writer(fetchFn, { coalesceMs: -1 })).toThrow(/bad coalesceMs/);
    expect(() => writer(fetchFn, { coalescePieces: Number.NaN })).toThrow(/bad coalescePieces/);
  });
});

describe('stream writer window (append requests)', () => {
  it('waits out the window before a request; a window that closed during one goes when it is answered', async () => {
    const server = fakeServer({ holdAppends: true });
    const w = writer(server.fetchFn, { upload: 'append', coalesceMs: 40 });
    w.write('a');
    await tick(20);
    w.write('b');
    await tick(19);
    expect(server.appends).toEqual([]);
    await tick(1);
    expect(server.appends.map((a) => [a.offset, a.text, a.at])).toEqual([[0, 'ab', 40]]);
    // In flight for 100 ms: 'c' opens a window at 50 that closes at 90, 'd' joins it at 70.
    await tick(10);
    w.write('c');
    await tick(20);
    w.write('d');
    await tick(70);
    server.appends[0]!.answer();
    await tick();
    expect(server.appends.map((a) => [a.offset, a.text, a.at])).toEqual([
      [0, 'ab', 40],
      [2, 'cd', 140],
    ]);
    // Answered at 150, 'e' written at 145 still has its window open: it waits to 185.
    await tick(5);
    w.write('e');
    await tick(5);
    server.appends[1]!.answer();
    await tick(34);
    expect(server.appends).toHaveLength(2);
    await tick(1);
    expect(server.appends.at(-1)).toMatchObject({ offset: 4, text: 'e', at: 185 });
    server.appends[2]!.answer();
    await expect(w.end()).resolves.toMatchObject({ length: 5, requests: 3 });
  });
});

describe('client.stream with a window', () => {
  it('shows each piece in the records at once; only the upload waits for the window', async () => {
    const server = fakeServer();
    const client = createSyncClient({
      url: 'http://sync.test',
      token: 'tok',
      fetch: server.fetchFn,
      network: null,
      autoConnect: false,
    });
    // The reply's record, followed (as the agent's own page would): its text starts empty.
    client.subscribeScope(`agent:${AGENT}`);
    const row = { id: ID, agent_id: AGENT, role: 'assistant', content: '', created_at: 't', updated_at: 't' };
    client.receiveFrame(
      JSON.stringify({
        type: 'bootstrap',
        scope: `agent:${AGENT}`,
        models: { Agent: [], Message: [row], Payment: [], CodeChange: [], ReasoningStep: [] },
        lastSyncId: 1,
      }),
    );
    const content = () => client.getState().records.get('Message', ID)?.content;
    const w = client.stream('Message', ID, 'content', { coalesceMs: 30, coalescePieces: 3 });
    expect(content()).toBe('');
    w.write('Hi');
    expect(content()).toBe('Hi');
    await tick(10);
    w.write(' there');
    expect(content()).toBe('Hi there');
    expect(server.appends).toEqual([]);
    await tick(20);
    expect(server.appends.map((a) => [a.offset, a.text, a.at])).toEqual([[0, 'Hi there', 30]]);
    await w.end();
    await client.close();
  });
});

describe('stream writer window (property)', () => {
  it('the lines together are the text, each starts where the previous ended, none waits past the window', async () => {
    const piece = fc.oneof(
      fc.constantFrom('a', ' the', '😀', 'e\u0301', '\n', '👨‍👩‍👧', ''),
      fc.string({ maxLength: 4 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ piece, gap: fc.integer({ min: 0, max: 60 }) }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 0, max: 80 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 2, max: 12 }),
        fc.constantFrom<'stream' | 'append'>('stream', 'append'),
        async (writes, coalesceMs, coalescePieces, maxPieceLength, upload) => {
          vi.setSystemTime(0);
          const server = fakeServer();
          const w = writer(server.fetchFn, { upload, coalesceMs, coalescePieces, maxPieceLength });
          let text = '';
          /** When each code unit was written, to bound how long it waited. */
          const writtenAt: number[] = [];
          for (const { piece, gap } of writes) {
            await tick(gap);
            w.write(piece);
            text += piece;
            for (let i = 0; i < piece.length; i++) writtenAt.push(Date.now());
          }
          await w.end();
          const sent = upload === 'stream' ? server.lines : server.appends;
          let end = 0;
          for (const s of sent) {
            expect(s.offset).toBe(end);
            expect(s.text.length).toBeLessThanOrEqual(maxPieceLength);
            // Only the half of a surrogate pair that waits for its partner may wait longer.
            const first = s.text.charCodeAt(0);
            if (!(first >= 0xd800 && first <= 0xdbff)) {
              expect(s.at - writtenAt[s.offset]!).toBeLessThanOrEqual(coalesceMs);
            }
            end += s.text.length;
          }
          expect(texts(sent).join('')).toBe(text);
          expect(server.stored()).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
  });
});
