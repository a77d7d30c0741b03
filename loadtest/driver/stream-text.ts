import { createHash } from 'node:crypto';
import { forEachCompletedToken } from '../k6/lib/stream-tokens';
import type { Histogram } from './histogram';

export { decodeToken, encodeToken, TOKEN_LENGTH } from '../k6/lib/stream-tokens';

/**
 * Records, for every token completed by growing a text from `before` to `text.length`, how long
 * ago it was generated. Returns how many tokens that was.
 */
export function recordCompletedTokens(text: string, before: number, now: number, latency: Histogram): number {
  return forEachCompletedToken(text, before, (at) => latency.record(now - at));
}

export interface StreamTextCounters {
  /** Tokens that reached this viewer's text (each once). */
  tokens: number;
  /** Append pieces already covered by the text (a duplicate, or a merged retry): skipped. */
  skipped: number;
  /** Append pieces starting past the end of the text: a gap the client would resume over. */
  gaps: number;
  latency: Histogram;
}

/**
 * One viewer's copy of the streamed fields, kept the way the contract says a client applies
 * them: an append lands at its offset exactly once (a piece already covered is skipped, a gap is
 * counted and not applied); an update or a snapshot replaces the text.
 */
export class StreamTexts {
  readonly #texts = new Map<string, string>();
  readonly #counters: StreamTextCounters;

  constructor(counters: StreamTextCounters) {
    this.#counters = counters;
  }

  /** A record from a bootstrap, or an update carrying the whole field. */
  replace(id: string, text: string, now: number): void {
    const before = this.#texts.get(id)?.length ?? 0;
    this.#texts.set(id, text);
    if (text.length > before)
      this.#counters.tokens += recordCompletedTokens(text, before, now, this.#counters.latency);
  }

  append(id: string, offset: number, piece: string, now: number): void {
    const text = this.#texts.get(id) ?? '';
    if (offset > text.length) {
      this.#counters.gaps++;
      return;
    }
    const end = offset + piece.length;
    if (end <= text.length) {
      this.#counters.skipped++;
      return;
    }
    const grown = text + piece.slice(text.length - offset);
    this.#texts.set(id, grown);
    this.#counters.tokens += recordCompletedTokens(grown, text.length, now, this.#counters.latency);
  }

  /** `[id, length, sha1]` per text, for comparing viewers with the writer without moving the texts. */
  digests(): [string, number, string][] {
    return [...this.#texts].map(([id, text]) => [id, text.length, digest(text)]);
  }
}

export function digest(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/** The shape of an event as far as the stream tracking reads it. */
export interface StreamEvent {
  model?: string;
  model_id?: string;
  action?: string;
  data?: Record<string, unknown> | null;
}

/** Feeds the streamed `Message.content` of a `sync` frame's events into `texts`. */
export function applyStreamEvents(texts: StreamTexts, events: readonly StreamEvent[], now: number): void {
  for (const e of events) {
    if (e.model !== 'Message' || typeof e.model_id !== 'string' || !e.data) continue;
    if (e.action === 'append' && e.data.field === 'content') {
      const { offset, text } = e.data;
      if (typeof offset === 'number' && typeof text === 'string') texts.append(e.model_id, offset, text, now);
    } else if ((e.action === 'update' || e.action === 'insert') && typeof e.data.content === 'string') {
      texts.replace(e.model_id, e.data.content, now);
    }
  }
}
