import { encodeToken } from './stream-text';

/** The stream scenario's phases: writers start, steady window opens and closes, all durable. */
export type StreamPhase = 'start' | 'steady' | 'steady-end' | 'end';

/** What the clock reads and moves of a reply. */
export interface ClockedReply {
  /** When the reply's first token is due (ms, set by `run`). */
  startAt: number;
  /** Tokens written so far (the `write` callback advances it). */
  written: number;
}

export interface StreamClockOptions {
  tokens: number;
  tokensPerSecond: number;
  startSpreadMs: number;
  openingMs: number;
  tickMs: number;
}

/**
 * The writers' clock: ONE interval drives every reply (no timer or promise per reply or per
 * token). Each tick hands `write`, for each reply with tokens due, how many are due and one token
 * text carrying the tick's time (all of them were generated now); `write` must advance
 * `written` by that count. It moves through the phases: `steady` once every reply is past its
 * opening (`openingMs` after its start), `steady-end` when the first reply writes its last token;
 * a run too short for that window marks the whole writing time instead.
 */
export class StreamClock<R extends ClockedReply> {
  onPhase: (phase: StreamPhase) => void = () => {};
  began = 0;
  tokensWritten = 0;
  /** Tokens written, and ms, between `steady` and `steady-end`. */
  steadyTokens = 0;
  steadyMs = 0;
  /** From the first tick to the last token written. */
  writingMs = 0;
  readonly #replies: readonly R[];
  readonly #o: StreamClockOptions;

  constructor(replies: readonly R[], options: StreamClockOptions) {
    this.#replies = replies;
    this.#o = options;
  }

  /** Writes every reply's tokens on time; resolves once the last token is written. */
  run(write: (r: R, token: string, count: number, now: number) => void): Promise<void> {
    const o = this.#o;
    const replies = this.#replies;
    this.began = Date.now();
    replies.forEach((r, i) => {
      r.startAt = this.began + (o.startSpreadMs * i) / replies.length;
    });
    const steadyFrom = (replies.at(-1)?.startAt ?? this.began) + o.openingMs;
    const steadyTo = this.began + ((o.tokens - 1) * 1000) / o.tokensPerSecond;
    const hasSteady = steadyTo > steadyFrom;
    let phase: 'before' | 'steady' | 'after' = 'before';
    let steadyAt = 0;
    let steadyTokensAt = 0;
    const closeSteady = (now: number) => {
      phase = 'after';
      this.steadyMs = now - steadyAt;
      this.steadyTokens = this.tokensWritten - steadyTokensAt;
      this.onPhase('steady-end');
    };
    this.onPhase('start');
    return new Promise<void>((resolve) => {
      const tick = () => {
        const now = Date.now();
        if (phase === 'before' && (!hasSteady || now >= steadyFrom)) {
          phase = 'steady';
          steadyAt = now;
          steadyTokensAt = this.tokensWritten;
          this.onPhase('steady');
        } else if (phase === 'steady' && hasSteady && now >= steadyTo) {
          closeSteady(now);
        }
        let token = '';
        let open = 0;
        for (const r of replies) {
          const due = Math.min(o.tokens, Math.floor(((now - r.startAt) * o.tokensPerSecond) / 1000) + 1);
          if (r.written < due) {
            token ||= encodeToken(now);
            this.tokensWritten += due - r.written;
            write(r, token, due - r.written, now);
          }
          if (r.written < o.tokens) open++;
        }
        if (open > 0) return;
        clearInterval(timer);
        this.writingMs = now - this.began;
        if (phase === 'steady') closeSteady(now);
        resolve();
      };
      const timer = setInterval(tick, o.tickMs);
    });
  }
}
