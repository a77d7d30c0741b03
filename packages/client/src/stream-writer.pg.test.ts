import type { WriteResult } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../../../services/api/test/api-harness';
import { createStreamWriter } from './stream-writer';
import { textInPieces } from './stream-writer-fixtures';
import { createSyncClient } from './sync-client';

/*
 * The stream writer against the real mutation API over a real Postgres database. Failures are
 * injected by wrapping fetch around the app, never by replacing it: a response lost after the
 * server committed, a request refused before it reached the worker (a restart: connection
 * refused, then 503 while it comes back).
 */

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'client_stream' });
});
afterAll(async () => h?.close());

const appFetch = ((input: string | URL | Request, init?: RequestInit) =>
  h.app.fetch(new Request(input, init))) as typeof fetch;

async function newMessage(content = ''): Promise<{ id: string; agentId: string }> {
  const agent = await h.createAgent();
  const res = await h.request('POST', '/api/messages', { agent_id: agent.id, role: 'assistant', content });
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

/** Yields to the event loop so responses can arrive between writes (pacing, not synchronisation). */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('stream writer against the real API', () => {
  it('stores the text byte for byte through lost responses and a worker restart', async () => {
    const m = await newMessage();
    const { text, pieces } = textInPieces(14, 1500);
    const injected = { lostAfterCommit: 0, refused: 0, unavailable: 0, delivered: 0 };
    let call = 0;
    let restartUntil = -1;
    // Settles whenever fetch gives an answer (or fails), so the writer below interleaves with them.
    let answered: () => void = () => {};
    const nextAnswer = () => new Promise<void>((resolve) => (answered = resolve));
    const flakyFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      try {
        return await attempt(input, init);
      } finally {
        setImmediate(() => answered());
      }
    }) as typeof fetch;
    const attempt = async (input: string | URL | Request, init?: RequestInit) => {
      call++;
      if (call === 20) restartUntil = call + 6; // the worker goes away for a few calls
      if (call <= restartUntil) {
        if (call % 2 === 0) {
          injected.refused++;
          throw new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
        }
        injected.unavailable++;
        return new Response(JSON.stringify({ error: { code: 'unavailable', message: 'starting' } }), {
          status: 503,
        });
      }
      const response = await appFetch(input, init);
      if (call % 5 === 0) {
        injected.lostAfterCommit++; // the server applied it; the answer never arrives
        throw new TypeError('fetch failed: socket hang up');
      }
      injected.delivered++;
      return response;
    };

    const w = createStreamWriter({
      baseUrl: 'http://api.test',
      token: h.token,
      fetch: flakyFetch,
      model: 'Message',
      id: m.id,
      field: 'content',
      backoff: { initialDelayMs: 2, maxDelayMs: 10 },
    });
    for (const [i, piece] of pieces.entries()) {
      w.write(piece);
      // Only while something is on its way (a lone first half of an emoji is held back, unsent).
      const unsent = text.slice(w.durableOffset, w.offset);
      if (i % 4 === 0 && unsent.length > 0 && !/^[\ud800-\udbff]$/.test(unsent)) await nextAnswer();
      else if (i % 2 === 0) await tick();
    }
    const result = await w.end();

    expect(injected.lostAfterCommit).toBeGreaterThan(2);
    expect(injected.refused).toBeGreaterThan(0);
    expect(injected.unavailable).toBeGreaterThan(0);
    expect(result.length).toBe(text.length);
    expect(result.requests).toBeLessThan(pieces.length); // pieces written in flight were batched
    const { content, pieces: events } = await stored(m);
    expect(Buffer.from(content)).toEqual(Buffer.from(text));
    let rebuilt = '';
    for (const e of events) {
      expect(e.offset).toBe(rebuilt.length); // each event continues exactly where the last ended
      rebuilt += e.text;
    }
    expect(rebuilt).toBe(text);
  });

  it('client.stream waits for its own insert of the message, then streams into it', async () => {
    const agent = await h.createAgent();
    const client = createSyncClient({
      url: 'http://api.test',
      token: h.token,
      fetch: appFetch,
      network: null,
    });
    const { text, pieces } = textInPieces(3, 300);
    const m = await (async () => {
      const insert = client.insert('Message', { agent_id: agent.id, role: 'assistant', content: '' });
      const id = client.getState().pending.at(-1)!.id;
      const w = client.stream('Message', id, 'content'); // before the insert is answered
      for (const piece of pieces) w.write(piece);
      await insert;
      expect(await w.end()).toMatchObject({ length: text.length });
      return { id, agentId: agent.id };
    })();
    const { content, pieces: events } = await stored(m);
    expect(content).toBe(text);
    expect(events.map((e) => e.text).join('')).toBe(text);
    expect(client.getState().errors).toEqual([]);
    await client.close();
  });
});
