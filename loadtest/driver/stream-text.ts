import { createHash } from 'node:crypto';
import { decodeToken, TOKEN_LENGTH } from '../k6/lib/stream-tokens';
import type { Histogram } from './histogram';

export { decodeToken, encodeToken, OPENING_MS, openingTokens, TOKEN_LENGTH } from '../k6/lib/stream-tokens';

/**
 * Records, for every token completed by growing a text from `before` to `text.length`, how long
 * ago it was generated: into `opening` for the reply's first `openingCount` tokens (its stream
 * opening), into `latency` for the rest. Returns how many tokens that was. A plain loop over char
 * codes: it runs for every token every viewer sees, so it allocates nothing.
 */
export function recordCompletedTokens(
  text: string,
  before: number,
  now: number,
  latency: Histogram,
  opening: Histogram = latency,
  openingCount = 0,
): number {
  let completed = 0;
  for (let k = Math.floor(before / TOKEN_LENGTH); (k + 1) * TOKEN_LENGTH <= text.length; k++) {
    const at = decodeToken(text, k * TOKEN_LENGTH);
    if (!Number.isNaN(at)) (k < openingCount ? opening : latency).record(now - at);
    completed++;
  }
  return completed;
}

export interface StreamTextCounters {
  /** Tokens that reached this viewer's text (each once). */
  tokens: number;
  /** Append pieces already covered by the text (a duplicate, or a merged retry): skipped. */
  skipped: number;
  /** Append pieces starting past the end of the text: a gap the client would resume over. */
  gaps: number;
  /** Token generation to arrival, past each reply's opening: the steady state. */
  latency: Histogram;
  /** The same for each reply's first `openingTokens` tokens (stream opening). */
  openingLatency: Histogram;
  /**
   * Append to arrival, past each reply's opening: per append event, how long ago its newest token
   * was generated. A writer sends an append in the tick its last token is generated, so this is
   * the append's time from the writer to this viewer; the tokens before it in the same append
   * also waited for the writer's window (that wait is in `latency`, not here).
   */
  appendLatency: Histogram;
  openingTokens: number;
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
    if (text.length > before) this.#record(text, before, now);
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
    const grown = offset === text.length ? text + piece : text + piece.slice(text.length - offset);
    this.#texts.set(id, grown);
    // The new tokens are read from the piece, not from `grown`: that is a rope of every piece so
    // far, and reading a character of it flattens it — a copy of the whole text per event. Only a
    // token split across two pieces (never, with whole-token pieces) reads the text.
    const c = this.#counters;
    let newest = Number.NaN;
    let newestIndex = -1;
    for (let k = Math.floor(text.length / TOKEN_LENGTH); (k + 1) * TOKEN_LENGTH <= end; k++) {
      const start = k * TOKEN_LENGTH;
      const at = start >= offset ? decodeToken(piece, start - offset) : decodeToken(grown, start);
      if (!Number.isNaN(at)) {
        (k < c.openingTokens ? c.openingLatency : c.latency).record(now - at);
        if (!(at <= newest)) {
          newest = at;
          newestIndex = k;
        }
      }
      c.tokens++;
    }
    if (newestIndex >= c.openingTokens) c.appendLatency.record(now - newest);
  }

  #record(text: string, before: number, now: number): void {
    const c = this.#counters;
    c.tokens += recordCompletedTokens(text, before, now, c.latency, c.openingLatency, c.openingTokens);
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

/** Feeds one streamed `Message.content` event of a `sync` frame into `texts`. */
export function applyStreamEvent(texts: StreamTexts, e: StreamEvent, now: number): void {
  if (e.model !== 'Message' || typeof e.model_id !== 'string' || !e.data) return;
  if (e.action === 'append' && e.data.field === 'content') {
    const { offset, text } = e.data;
    if (typeof offset === 'number' && typeof text === 'string') texts.append(e.model_id, offset, text, now);
  } else if ((e.action === 'update' || e.action === 'insert') && typeof e.data.content === 'string') {
    texts.replace(e.model_id, e.data.content, now);
  }
}

/** Feeds the streamed `Message.content` of a `sync` frame's events into `texts`. */
export function applyStreamEvents(texts: StreamTexts, events: readonly StreamEvent[], now: number): void {
  for (const e of events) applyStreamEvent(texts, e, now);
}
