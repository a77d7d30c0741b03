import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createStreamWriter } from './stream-writer';

/*
 * The writer against a small faithful model of the append endpoint (contract v1.1 §4: the piece
 * lands at the current length, an exact retry is 200 without writing, anything else is 409 with
 * the length, a lone surrogate is 400) behind a network that loses answers after the write,
 * refuses connections and answers 503, at random. Whatever the text, the cuts and the failures,
 * the stored text ends equal to the writer's. The real API is exercised in
 * stream-writer.pg.test.ts; this explores the space of cuts and failure schedules.
 */

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

type Fault = 'ok' | 'lost' | 'refused' | 'unavailable';

function faithfulServer(faults: Fault[]) {
  let stored = '';
  let call = 0;
  const fetchFn = (async (_input: string | URL | Request, init?: RequestInit) => {
    const fault = faults[call++ % faults.length] ?? 'ok';
    if (fault === 'refused') throw new TypeError('fetch failed: ECONNREFUSED');
    if (fault === 'unavailable')
      return new Response('{"error":{"code":"unavailable","message":"x"}}', { status: 503 });
    const { offset, text } = JSON.parse(String(init?.body)) as { offset: number; text: string };
    let response: Response;
    if (LONE_SURROGATE.test(text)) {
      response = new Response('{"error":{"code":"invalid_body","message":"lone surrogate"}}', {
        status: 400,
      });
    } else if (offset === stored.length || stored.slice(offset, offset + text.length) === text) {
      if (offset === stored.length) stored += text;
      response = new Response(
        JSON.stringify({ data: { length: stored.length }, scope: 'agent:a', syncId: call }),
      );
    } else {
      response = new Response(
        JSON.stringify({
          error: { code: 'offset_mismatch', message: 'x', details: { length: stored.length } },
        }),
        { status: 409 },
      );
    }
    if (fault === 'lost') throw new TypeError('fetch failed: socket hang up');
    return response;
  }) as typeof fetch;
  return { fetchFn, stored: () => stored };
}

const grapheme = fc.constantFrom('a', ' ', 'é', 'e\u0301', '😀', '👨‍👩‍👧', '🇫🇷', '語', '\n');

describe('stream writer (property)', () => {
  it('stores exactly the text written, whatever the cuts and the faults', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(grapheme, { minLength: 1, maxLength: 60 }).map((g) => g.join('')),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.constantFrom<Fault>('ok', 'ok', 'lost', 'refused', 'unavailable'), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }),
        async (text, cuts, faults, yields) => {
          // One `ok` per cycle of the schedule, so every piece eventually lands.
          const server = faithfulServer([...faults, 'ok']);
          const w = createStreamWriter({
            baseUrl: 'http://api.test',
            token: 't',
            fetch: server.fetchFn,
            model: 'Message',
            id: 'm',
            field: 'content',
            backoff: { initialDelayMs: 0 },
          });
          for (let at = 0, i = 0; at < text.length; i++) {
            const n = cuts.some((c) => c > 0) ? cuts[i % cuts.length]! : 1; // 0: an empty piece
            w.write(text.slice(at, at + n));
            at += n;
            if (yields[i % yields.length]) await new Promise((r) => setImmediate(r));
          }
          const result = await w.end();
          expect(result.length).toBe(text.length);
          expect(server.stored()).toBe(text);
        },
      ),
      { numRuns: 150 },
    );
  });
});
