import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MutationError, SyncClosedError } from './errors';
import { createStreamWriter, type StreamWriterOptions } from './stream-writer';
import { createSyncClient } from './sync-client';

const ID = '6f1d3c1e-8a4b-4c2d-9e7f-0a1b2c3d4e5f';
const AGENT = '00000000-0000-4000-8000-000000000001';

interface Call {
  url: string;
  method: string;
  body: Record<string, unknown>;
  headers: Record<string, string>;
  respond(answer: Response | Error): void;
}

/** A fetch whose every call waits until the test answers it. */
function scriptedFetch() {
  const calls: Call[] = [];
  const fetchFn = ((input: string | URL | Request, init?: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      calls.push({
        url: String(input),
        method: init?.method ?? 'GET',
        body: JSON.parse(String(init?.body ?? '{}')),
        headers: init?.headers as Record<string, string>,
        respond: (answer) => (answer instanceof Error ? reject(answer) : resolve(answer)),
      });
    })) as typeof fetch;
  return { calls, fetchFn };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status });
const ok = (length: number, syncId = 7) =>
  json(200, { data: { id: ID, length }, scope: `agent:${AGENT}`, syncId });
const mismatch = (length: number) =>
  json(409, { error: { code: 'offset_mismatch', message: 'offset mismatch', details: { length } } });
const appends = (calls: Call[]) => calls.filter((c) => c.url.endsWith('/append')).map((c) => c.body);

/** Lets promises and due timers run. */
const settle = (ms = 0) => vi.advanceTimersByTimeAsync(ms);

function writer(fetchFn: typeof fetch, extra: Partial<StreamWriterOptions<'Message'>> = {}) {
  return createStreamWriter({
    baseUrl: 'http://sync.test/',
    token: 'tok',
    fetch: fetchFn,
    model: 'Message',
    id: ID,
    field: 'content',
    backoff: { initialDelayMs: 100, random: () => 0.5 },
    // These tests describe sending without a window (each tick's pieces at once); the window
    // has its own tests in stream-writer-window.test.ts.
    coalesceMs: 0,
    ...extra,
  });
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('stream writer', () => {
  it('sends what was written in one tick as one append, and batches pieces written while in flight', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn);
    w.write('Hel');
    w.write('lo');
    await settle();
    expect(calls.length).toBe(1);
    expect(calls[0]!.url).toBe(`http://sync.test/api/messages/${ID}/append`);
    expect(calls[0]!.method).toBe('POST');
    expect(calls[0]!.headers.authorization).toBe('Bearer tok');
    expect(calls[0]!.body).toEqual({ field: 'content', offset: 0, text: 'Hello' });

    for (const token of [',', ' wor', 'ld', '!']) {
      w.write(token);
      await settle();
    }
    expect(calls.length).toBe(1); // nothing more while the first is in flight
    expect(w.offset).toBe(13);
    expect(w.durableOffset).toBe(0);
    calls[0]!.respond(ok(5));
    await settle();
    expect(w.durableOffset).toBe(5);
    expect(appends(calls)).toEqual([
      { field: 'content', offset: 0, text: 'Hello' },
      { field: 'content', offset: 5, text: ', world!' },
    ]);
    const end = w.end();
    calls[1]!.respond(ok(13, 9));
    await expect(end).resolves.toEqual({ length: 13, syncId: 9, requests: 2 });
    expect(() => w.write('more')).toThrow(/after end/);
  });

  it('retries a failed append with the same offset and text after a backoff', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const retrying = vi.fn();
    const w = writer(fetchFn, { hooks: { retrying } });
    w.write('ab');
    await settle();
    calls[0]!.respond(json(503, { error: { code: 'unavailable', message: 'down' } }));
    w.write('cd'); // written during the failure: not folded into the retried piece
    await settle(49);
    expect(calls.length).toBe(1); // backoff: uniform draw 0.5 of 100 ms
    await settle(1);
    expect(calls.length).toBe(2);
    calls[1]!.respond(new TypeError('fetch failed: ECONNREFUSED'));
    await settle(100); // second delay: 0.5 of 200 ms
    expect(calls.length).toBe(3);
    calls[2]!.respond(ok(2));
    await settle();
    expect(retrying).toHaveBeenCalledTimes(2);
    expect(appends(calls)).toEqual([
      { field: 'content', offset: 0, text: 'ab' },
      { field: 'content', offset: 0, text: 'ab' },
      { field: 'content', offset: 0, text: 'ab' },
      { field: 'content', offset: 2, text: 'cd' },
    ]);
    const end = w.end();
    calls[3]!.respond(ok(4));
    await expect(end).resolves.toMatchObject({ length: 4, requests: 2 });
  });

  it('takes a 409 whose length ends exactly after the piece as the piece having landed', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn, { offset: 3 });
    w.write('def');
    await settle();
    expect(calls[0]!.body).toMatchObject({ offset: 3, text: 'def' });
    calls[0]!.respond(mismatch(6));
    await settle();
    w.write('g');
    const end = w.end();
    await settle();
    expect(calls[1]!.body).toMatchObject({ offset: 6, text: 'g' });
    calls[1]!.respond(ok(7));
    await expect(end).resolves.toMatchObject({ length: 7 });
  });

  it('fails on any other 409 offset_mismatch, sends nothing more and reports it', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const failed = vi.fn();
    const w = writer(fetchFn, { hooks: { failed } });
    w.write('abc');
    await settle();
    w.write('def');
    calls[0]!.respond(mismatch(5));
    const error = await w.done.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MutationError);
    expect(error).toMatchObject({ status: 409, code: 'offset_mismatch' });
    expect(failed).toHaveBeenCalledWith(error);
    w.write('ignored');
    await settle(60_000);
    expect(calls.length).toBe(1);
    await expect(w.end()).rejects.toBe(error);
  });

  it.each([400, 403, 404])('does not retry a %i', async (status) => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn);
    w.write('x');
    await settle();
    calls[0]!.respond(json(status, { error: { code: `c${status}`, message: 'no' } }));
    await expect(w.end()).rejects.toMatchObject({ status, code: `c${status}` });
    await settle(60_000);
    expect(calls.length).toBe(1);
  });

  it('gives up after maxRetries with the last failure', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn, { maxRetries: 2 });
    w.write('x');
    for (let i = 0; i < 3; i++) {
      await settle(1_000);
      calls[i]!.respond(json(502, {}));
    }
    await expect(w.end()).rejects.toMatchObject({ status: 502, code: 'http_502' });
    expect(calls.length).toBe(3);
  });

  it('never ends a request between the halves of a surrogate pair', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn);
    w.write('a\ud83d'); // an emoji's first half
    await settle();
    expect(calls[0]!.body).toMatchObject({ offset: 0, text: 'a' });
    calls[0]!.respond(ok(1));
    await settle();
    expect(calls.length).toBe(1); // the half waits for its partner
    w.write('\ude00b');
    await settle();
    expect(calls[1]!.body).toMatchObject({ offset: 1, text: '😀b' });
    calls[1]!.respond(ok(4));
    await expect(w.end()).resolves.toMatchObject({ length: 4 });
  });

  it('splits a long buffer into pieces of at most maxPieceLength', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const w = writer(fetchFn, { maxPieceLength: 4 });
    w.write('abc😀def');
    const end = w.end();
    await settle();
    calls[0]!.respond(ok(3));
    await settle();
    calls[1]!.respond(ok(7));
    await settle();
    calls[2]!.respond(ok(8));
    await expect(end).resolves.toMatchObject({ length: 8, requests: 3 });
    expect(appends(calls).map((b) => b.text)).toEqual(['abc', '😀de', 'f']);
  });

  it('refuses a field that does not take appends, and stops on close()', async () => {
    const { fetchFn } = scriptedFetch();
    expect(() =>
      createStreamWriter({ baseUrl: 'http://x', model: 'Message', id: ID, field: 'role' as 'content' }),
    ).toThrow(/does not accept appends/);
    const w = writer(fetchFn);
    w.write('x');
    w.close();
    await expect(w.done).rejects.toBeInstanceOf(SyncClosedError);
  });
});

describe('client.stream', () => {
  it('waits for the record insert, then streams from the record length; failures land in state.errors', async () => {
    const { calls, fetchFn } = scriptedFetch();
    const client = createSyncClient({ url: 'http://sync.test', token: 'tok', fetch: fetchFn, network: null });
    const insert = client.insert('Message', { id: ID, agent_id: AGENT, role: 'assistant', content: 'Hi' });
    const w = client.stream('Message', ID.toUpperCase(), 'content', { coalesceMs: 0 });
    expect(w.offset).toBe(2); // the optimistic record's content
    w.write(' there');
    await settle();
    expect(calls.map((c) => c.url)).toEqual(['http://sync.test/api/messages']);
    calls[0]!.respond(json(201, { data: { id: ID, content: 'Hi' }, scope: `agent:${AGENT}`, syncId: 1 }));
    await insert;
    await settle();
    expect(calls[1]!.body).toEqual({ field: 'content', offset: 2, text: ' there' });
    calls[1]!.respond(mismatch(4));
    await expect(w.end()).rejects.toMatchObject({ code: 'offset_mismatch' });
    expect(client.getState().errors.at(-1)).toMatchObject({
      kind: 'mutation',
      code: 'offset_mismatch',
      status: 409,
    });
    const other = client.stream('Message', ID, 'content', { offset: 8 });
    other.write('x');
    await client.close();
    await expect(other.done).rejects.toBeInstanceOf(SyncClosedError);
  });
});
