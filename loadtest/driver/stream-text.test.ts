import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Histogram } from './histogram';
import {
  applyStreamEvents,
  decodeToken,
  digest,
  encodeToken,
  recordCompletedTokens,
  type StreamTextCounters,
  StreamTexts,
  TOKEN_LENGTH,
} from './stream-text';

const NOW = 2 ** 41;
const counters = (): StreamTextCounters => ({
  tokens: 0,
  skipped: 0,
  gaps: 0,
  latency: new Histogram(),
  openingLatency: new Histogram(),
  appendLatency: new Histogram(),
  openingTokens: 0,
});

describe('stream tokens', () => {
  it('round-trips a timestamp through a fixed-width token', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 41 }), (ms) => {
        const token = encodeToken(ms);
        expect(token).toHaveLength(TOKEN_LENGTH);
        expect(decodeToken(token, 0)).toBe(ms);
      }),
    );
  });

  it('decodes nothing from text that is not a token', () => {
    expect(decodeToken('xabcdefgh', 0)).toBeNaN();
    expect(decodeToken(' abc', 0)).toBeNaN();
    expect(decodeToken(' ABCDEFGH', 0)).toBeNaN();
  });

  it('records each token once, when its last character arrives', () => {
    const latency = new Histogram();
    const text = encodeToken(1000) + encodeToken(1500) + encodeToken(2000);
    expect(recordCompletedTokens(text.slice(0, 4), 0, 3000, latency)).toBe(0);
    expect(recordCompletedTokens(text.slice(0, 12), 4, 3000, latency)).toBe(1); // first token done
    expect(recordCompletedTokens(text, 12, 3000, latency)).toBe(2);
    const summary = latency.summary();
    expect(summary.count).toBe(3);
    expect(summary.max).toBe(2000);
    expect(summary.min).toBe(1000);
  });
});

describe('append to viewer', () => {
  it("records one sample per append, from its newest token's generation, only past the opening", () => {
    const c = { ...counters(), openingTokens: 1 };
    const texts = new StreamTexts(c);
    // The opening's append (token 0) counts only as a token; then an append of two tokens made at
    // 1000 and 1033 arrives at 1050: the append waited 17 ms, its first token 50 ms.
    texts.append('m', 0, encodeToken(900), 1000);
    texts.append('m', TOKEN_LENGTH, encodeToken(1000) + encodeToken(1033), 1050);
    // A duplicate (already covered) adds nothing.
    texts.append('m', TOKEN_LENGTH, encodeToken(1000) + encodeToken(1033), 1060);
    const appends = c.appendLatency.summary();
    expect(appends.count).toBe(1);
    expect(appends.max).toBe(17);
    expect(c.latency.summary().max).toBe(50);
    expect(c.latency.summary().count).toBe(2);
  });
});

describe('opening and steady state', () => {
  it("puts a reply's first tokens in the opening histogram and the rest in the steady one", () => {
    const steady = new Histogram();
    const opening = new Histogram();
    const text = [100, 200, 300, 400, 500].map(encodeToken).join('');
    // Grown in two steps, the second starting mid-token: each token counted once, by its index.
    expect(recordCompletedTokens(text.slice(0, 22), 0, 1000, steady, opening, 2)).toBe(2);
    expect(recordCompletedTokens(text, 22, 1000, steady, opening, 2)).toBe(3);
    expect(opening.summary()).toMatchObject({ count: 2, min: 800, max: 900 });
    expect(steady.summary()).toMatchObject({ count: 3, min: 500, max: 700 });
  });

  it('StreamTexts splits a viewer’s tokens the same way', () => {
    const c = { ...counters(), openingTokens: 1 };
    const texts = new StreamTexts(c);
    texts.append('m', 0, encodeToken(10) + encodeToken(20), 50);
    expect(c.openingLatency.count).toBe(1);
    expect(c.latency.count).toBe(1);
  });
});

describe('StreamTexts', () => {
  it('applies pieces at their offset once, skips covered pieces and refuses gaps', () => {
    const c = counters();
    const texts = new StreamTexts(c);
    const full = encodeToken(10) + encodeToken(20);
    texts.append('m', 0, full.slice(0, 5), 100);
    texts.append('m', 0, full.slice(0, 5), 100); // duplicate
    texts.append('m', 12, full.slice(12), 100); // gap: 5..12 missing
    texts.append('m', 3, full.slice(3, 12), 100); // overlaps what is there
    texts.append('m', 12, full.slice(12), 100);
    expect(texts.digests()).toEqual([['m', full.length, digest(full)]]);
    expect(c).toMatchObject({ tokens: 2, skipped: 1, gaps: 1 });
  });

  it('ends with the writer text for any split into pieces, duplicated and re-delivered', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (stamps, sizes, repeats) => {
          const full = stamps.map(encodeToken).join('');
          const c = counters();
          const texts = new StreamTexts(c);
          let offset = 0;
          for (let i = 0; offset < full.length; i++) {
            const piece = full.slice(offset, offset + sizes[i % sizes.length]!);
            texts.append('m', offset, piece, NOW);
            if (repeats[i]) texts.append('m', offset, piece, NOW);
            offset += piece.length;
          }
          expect(texts.digests()).toEqual([['m', full.length, digest(full)]]);
          expect(c.tokens).toBe(stamps.length);
          // Every token timed once, from its own digits, wherever the pieces cut it.
          expect(c.latency.summary()).toMatchObject({
            count: stamps.length,
            min: NOW - Math.max(...stamps),
            max: NOW - Math.min(...stamps),
          });
          expect(c.gaps).toBe(0);
        },
      ),
    );
  });

  it('reads appends, updates and inserts of Message.content from sync events', () => {
    const c = counters();
    const texts = new StreamTexts(c);
    const a = encodeToken(1);
    const b = encodeToken(2);
    applyStreamEvents(
      texts,
      [
        { model: 'Message', model_id: 'm1', action: 'insert', data: { content: '' } },
        {
          model: 'Message',
          model_id: 'm1',
          action: 'append',
          data: { field: 'content', offset: 0, text: a },
        },
        { model: 'Message', model_id: 'm2', action: 'update', data: { content: a + b } },
        { model: 'Agent', model_id: 'm1', action: 'update', data: { content: 'ignored' } },
        { model: 'Message', model_id: 'm1', action: 'delete', data: null },
      ],
      5,
    );
    expect(new Map(texts.digests().map(([id, length]) => [id, length]))).toEqual(
      new Map([
        ['m1', TOKEN_LENGTH],
        ['m2', 2 * TOKEN_LENGTH],
      ]),
    );
    expect(c.tokens).toBe(3);
  });
});
