import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  APPEND_STREAM_CONTENT_TYPE,
  MAX_TEXT_LENGTH,
  type ModelDef,
  type StreamAck,
  textProblem,
} from '@openagents/sync-protocol';
import {
  AppError,
  type Logger,
  type Principal,
  type RateDecision,
  toAppError,
} from '@openagents/sync-server-kit';
import type { CommitMember, MutationOutcome } from './commit';
import type { MutationResult } from './metrics';
import { type MutationLocation, type PlannedAppend, validateAppend } from './mutation-plan';
import type { StreamTracer } from './stream-trace';

/** What a stream needs from the app it runs in. */
export interface AppendStreamDeps {
  /**
   * The worker's commit pipeline: a stream's commit shares transactions with every other write.
   * `onCommitted`, when the path gives it, comes once the member is committed and before the
   * answer (which waits for the bus): the stream's next commit may start then.
   */
  commit(member: CommitMember, onCommitted?: () => void): Promise<MutationOutcome[]>;
  /** Charges the subject's rate limit once per commit (a commit is what a request costs). */
  charge(subject: string): RateDecision;
  /** Counts one committed (or refused) append in `sync_mutations_total`. */
  count(model: string, result: MutationResult): void;
  log: Logger;
  /** True while the worker drains: open streams end after their next commit. */
  isDraining(): boolean;
  /** Clock in ms (token expiry); replaceable in tests. */
  now?: () => number;
  /** Bench only: stage times of traced pieces (stream-trace.ts). */
  trace?: StreamTracer | undefined;
}

export interface AppendStreamOptions {
  /** Longest line (one piece) in bytes; the per-request body limit of the other endpoints. */
  maxLineBytes: number;
  /** Most bytes one stream may carry in all. */
  maxStreamBytes: number;
  /**
   * How long the first piece of a commit waits for more pieces of the same reply, in ms. Every
   * piece is durable at most this long plus one commit after it arrived; more pieces per commit
   * means fewer transactions and fewer, larger events on every viewer's socket.
   */
  coalesceMs: number;
  /**
   * A window holding this many pieces closes at once, without waiting out `coalesceMs` (0: only
   * the time closes it). Lowers the latency of a reply that fills its window early, at the price
   * of more, smaller events (CPU and bytes per token) for fast replies.
   */
  coalescePieces: number;
  /** Pending text that is committed at once without waiting for the window (UTF-16 units). */
  maxPendingLength: number;
  /** A stream that carried no byte for this long ends (cleanly, with its `done` line). */
  idleMs: number;
  /** A stream ends (cleanly) once open this long; the writer opens the next one. */
  maxDurationMs: number;
}

/**
 * coalesceMs 0: a piece commits in the next append batcher round (≤ 10 ms away) once the stream's
 * previous commit is done. A window that held 2 tokens per event at 30 tokens/s (40 ms: ~195
 * envelope bytes per token, the wire target without compression) put every token's p50 past
 * 40 ms and its p99 past the 50 ms token → viewer target, whatever the load (docs/benchmarks.md,
 * "Streaming replies", stage breakdown); the wire target is the gateway's WS_COMPRESSION now.
 * See docs/api.md, "Streaming upload". coalescePieces 0: the time alone closes a window.
 * maxDurationMs 240 s stays below Node's default request timeout (300 s), which would otherwise
 * cut a long reply with a 408.
 */
export const APPEND_STREAM_DEFAULTS: Omit<AppendStreamOptions, 'maxLineBytes'> = {
  maxStreamBytes: 64 * 1024 * 1024,
  coalesceMs: 0,
  coalescePieces: 0,
  maxPendingLength: 65_536,
  idleMs: 30_000,
  maxDurationMs: 240_000,
};

/** Error paths of a streamed piece are those of the single append endpoint. */
const LINE: MutationLocation = { data: '', id: 'id', key: 'Idempotency-Key' };

/** The open streams of one worker, for metrics and tests. */
export interface AppendStreams {
  /**
   * Answers one `POST /api/<path>/<id>/append-stream` whose caller is already authenticated and
   * charged: checks the content type, then streams acknowledgements while the body streams in.
   * `incoming` is the Node request under @hono/node-server: its body is read from it directly
   * (see `#readNode`), not through `request.body`. `outgoing`, its response: once the answer's
   * head is out, acknowledgements are written to it directly (see `#send`).
   */
  open(
    request: Request,
    principal: Principal,
    model: ModelDef,
    id: string,
    incoming?: IncomingMessage,
    outgoing?: ServerResponse,
  ): Response;
  /** Streams open now. */
  active(): number;
}

/**
 * The streaming upload of appends (docs/api.md, "Streaming upload"): one long-lived request per
 * reply whose body carries the pieces as NDJSON lines, each the body of the contract's append
 * (`{ field, offset, text }`). A piece costs the worker a line split, a JSON parse, a validation
 * and an array push; pieces that arrive within `coalesceMs` of each other go into the commit
 * pipeline as ONE append, so they become one transaction member and one event.
 *
 * Every piece is still offset-checked: the stream's pieces must be contiguous (each starts where
 * the previous one ended), and the first of every commit must land at the field's length in
 * Postgres, or be an exact retry of text already there, exactly as the single append.
 */
export function createAppendStreams(deps: AppendStreamDeps, options: AppendStreamOptions): AppendStreams {
  let active = 0;
  return {
    open(request, principal, model, id, incoming, outgoing) {
      const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
      if (type !== APPEND_STREAM_CONTENT_TYPE && type !== 'application/jsonl') {
        throw new AppError('unsupported_media_type', `The body must be ${APPEND_STREAM_CONTENT_TYPE}`);
      }
      const declared = request.headers.get('content-length');
      if (declared !== null && Number(declared) > options.maxStreamBytes) {
        throw new AppError('payload_too_large', `A stream carries at most ${options.maxStreamBytes} bytes`, {
          details: { limit: options.maxStreamBytes },
        });
      }
      const session = new AppendStreamSession(deps, options, principal, model, id, outgoing);
      active++;
      const body = new ReadableStream<Uint8Array>(
        {
          start: (controller) => {
            session.run(incoming ?? request.body, controller).finally(() => active--);
          },
          pull: () => session.readerWaiting(),
          cancel: () => session.clientGone(),
        },
        // No chunk is asked for ahead: `pull` runs only while a read waits on an empty queue.
        { highWaterMark: 0 },
      );
      return new Response(body, {
        status: 200,
        headers: { 'content-type': APPEND_STREAM_CONTENT_TYPE, 'cache-control': 'no-store' },
      });
    },
    active: () => active,
  };
}

interface Pending {
  offset: number;
  parts: string[];
  length: number;
}

const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const MAX_OFFSET = 2 ** 31 - 1;

class AppendStreamSession {
  #deps: AppendStreamDeps;
  #o: AppendStreamOptions;
  #principal: Principal;
  #model: ModelDef;
  #id: string;
  #decoder = new TextDecoder('utf-8', { fatal: true });
  #out: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** The Node response under @hono/node-server, which the acknowledgements may go to directly. */
  #response: ServerResponse | undefined;
  /** A read of the answer's body waits on an empty queue: every chunk enqueued has been written. */
  #readerWaiting = false;
  /** Acknowledgements go straight to `#response` from now on (never back to the web stream). */
  #direct = false;
  /** Ends the reading of the body (cancels the web stream, or detaches from the Node request). */
  #stopReading: (() => void) | undefined;
  /** The field all pieces go to (set by the first line). */
  #field: string | undefined;
  /**
   * The record's scope, from the answer of the first commit (a record's scope never changes):
   * each later append names it, so the commit pipeline queues and locks by it without a lookup.
   */
  #scope: string | null = null;
  /** Where the next piece must start; undefined before the first piece. */
  #next: number | undefined;
  #pending: Pending | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The window of the pending pieces is over: commit them as soon as none is in flight. */
  #due = false;
  /**
   * A commit of this stream is in flight and not yet committed: the next one waits (one commit
   * at a time, each checked at the length the previous one left).
   */
  #committing = false;
  /** Commits not yet answered (committed ones may still wait for the bus): `#drain` waits for them. */
  readonly #unanswered = new Set<Promise<void>>();
  /** Why the stream ends with an error line (input or commit); pieces after it are not committed. */
  #error: AppError | undefined;
  /** A commit failed: what is pending is dropped, not committed. */
  #commitFailed = false;
  #gone = false;
  #stopped = false;
  #lines = 0;
  /** The line being received: its parts so far (a line may span chunks) and their bytes. */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #total = 0;
  /** Bench only: this record's pieces are traced. */
  #trace: StreamTracer | undefined;

  constructor(
    deps: AppendStreamDeps,
    options: AppendStreamOptions,
    principal: Principal,
    model: ModelDef,
    id: string,
    response?: ServerResponse,
  ) {
    this.#deps = deps;
    this.#o = options;
    this.#principal = principal;
    this.#model = model;
    this.#id = id;
    this.#response = response;
    this.#trace = deps.trace?.sampled(id) ? deps.trace : undefined;
  }

  /** The answer's reader waits for a chunk (the web stream's `pull`). */
  readerWaiting(): void {
    if (this.#response) this.#readerWaiting = true;
  }

  /** Reads the body to its end (or to the first error), commits, answers, closes. */
  async run(
    body: ReadableStream<Uint8Array> | IncomingMessage | null,
    out: ReadableStreamDefaultController<Uint8Array>,
  ) {
    this.#out = out;
    const lifetime = setTimeout(() => this.#stop(), this.#o.maxDurationMs);
    try {
      if (body instanceof ReadableStream) await this.#readWeb(body);
      else if (body) await this.#readNode(body);
      await this.#drain();
      if (this.#error) this.#send(this.#error.toBody());
      else this.#send({ done: true, ...(this.#next !== undefined ? { length: this.#next } : {}) });
    } catch (err) {
      this.#deps.log.error({ err }, 'append stream failed');
      this.#send(toAppError(err).toBody());
    } finally {
      clearTimeout(lifetime);
      clearTimeout(this.#timer);
      if (!this.#gone) {
        try {
          out.close();
        } catch {}
      }
      // A body still arriving (the stream ended early) is not read any further.
      this.#stopReading?.();
    }
  }

  clientGone(): void {
    this.#gone = true;
    this.#stop();
  }

  /** Stops reading; the pieces already received are still committed. */
  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopReading?.();
  }

  /** The body as a web stream (`app.request`, other servers). */
  async #readWeb(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    this.#stopReading = () => {
      reader.cancel().catch(() => {});
    };
    if (this.#stopped) return;
    const idle = setTimeout(() => this.#stop(), this.#o.idleMs);
    try {
      while (!this.#stopped) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch {
          // The client went away mid-body: what arrived whole is still committed.
          this.#gone = true;
          return;
        }
        if (chunk.done || this.#stopped) break;
        idle.refresh();
        this.#chunk(chunk.value);
      }
      this.#lastLine();
    } finally {
      clearTimeout(idle);
    }
  }

  /**
   * The body straight from the Node request, under @hono/node-server. Each piece usually arrives
   * as its own chunk; reading them as 'data' events costs one callback per chunk, where the web
   * stream @hono/node-server wraps around the request (a ReadableStream pulling from
   * `Readable.toWeb`) costs two stream reads and a handful of promises — most of what a piece
   * cost the worker before the commit (see docs/benchmarks.md, append-stream).
   */
  #readNode(incoming: IncomingMessage): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#stopped || incoming.readableEnded) {
        resolve();
        return;
      }
      if (incoming.destroyed) {
        // Gone before the stream started: no event will come (the web stream's read would throw).
        this.#gone = true;
        resolve();
        return;
      }
      const idle = setTimeout(() => this.#stop(), this.#o.idleMs);
      const detach = () => {
        clearTimeout(idle);
        incoming.off('data', onData);
        incoming.off('end', onEnd);
        incoming.off('error', onGone);
        incoming.off('close', onGone);
        // Left paused: @hono/node-server drains or destroys it once the answer is complete.
        incoming.pause();
        resolve();
      };
      const onData = (chunk: Buffer) => {
        idle.refresh();
        this.#chunk(chunk);
        if (this.#stopped) detach();
      };
      const onEnd = () => {
        this.#lastLine();
        detach();
      };
      // 'close' before 'end': the client went away mid-body; what arrived whole is still committed.
      const onGone = () => {
        this.#gone = true;
        detach();
      };
      this.#stopReading = detach;
      incoming.on('data', onData);
      incoming.once('end', onEnd);
      incoming.once('error', onGone);
      incoming.once('close', onGone);
      incoming.resume();
    });
  }

  /** One chunk of the body: its complete lines are handled, the rest kept for the next chunk. */
  #chunk(value: Uint8Array): void {
    this.#total += value.byteLength;
    if (this.#total > this.#o.maxStreamBytes) {
      this.#refuse(
        new AppError('payload_too_large', `A stream carries at most ${this.#o.maxStreamBytes} bytes`, {
          details: { limit: this.#o.maxStreamBytes },
        }),
      );
      return;
    }
    for (let start = 0; ; ) {
      const newline = value.indexOf(NEWLINE, start);
      const end = newline < 0 ? value.byteLength : newline;
      this.#partBytes += end - start;
      if (this.#partBytes > this.#o.maxLineBytes) {
        this.#refuse(this.#lineTooLarge());
        return;
      }
      if (end > start) this.#parts.push(value.subarray(start, end));
      if (newline < 0) return;
      const refusal = this.#line(this.#parts, this.#partBytes);
      if (refusal) {
        this.#refuse(refusal);
        return;
      }
      this.#parts = [];
      this.#partBytes = 0;
      start = newline + 1;
    }
  }

  /** The body ended: the last line needs no newline. */
  #lastLine(): void {
    const refusal =
      !this.#stopped && this.#partBytes > 0 ? this.#line(this.#parts, this.#partBytes) : undefined;
    if (refusal) this.#refuse(refusal);
  }

  #refuse(error: AppError): void {
    this.#error ??= error;
    this.#stop();
  }

  #lineTooLarge(): AppError {
    return new AppError('payload_too_large', `A line exceeds ${this.#o.maxLineBytes} bytes`, {
      details: { limit: this.#o.maxLineBytes, line: this.#lines + 1 },
    });
  }

  /** One line: a piece, validated and offset-checked against the stream, then queued. */
  #line(parts: Uint8Array[], bytes: number): AppError | undefined {
    this.#lines++;
    const raw = parts.length === 1 ? parts[0]! : concat(parts, bytes);
    let text: string;
    try {
      text = this.#decoder.decode(raw);
    } catch {
      return new AppError('bad_request', `Line ${this.#lines} is not valid UTF-8`, {
        details: { line: this.#lines },
      });
    }
    if (text.trim() === '') return undefined;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      return new AppError('bad_request', `Line ${this.#lines} is not valid JSON`, {
        details: [
          {
            path: '(body)',
            line: this.#lines,
            message: err instanceof Error ? err.message.slice(0, 200) : 'invalid JSON',
          },
        ],
      });
    }
    let piece = this.#sameFieldPiece(body);
    if (!piece) {
      try {
        piece = validateAppend(this.#model, body, LINE);
      } catch (err) {
        return toAppError(err);
      }
    }
    if (this.#field !== undefined && piece.field !== this.#field) {
      return new AppError('invalid_body', 'Every piece of a stream goes to the same field', {
        details: [
          { path: 'field', line: this.#lines, message: `must be ${this.#field} like the first piece` },
        ],
      });
    }
    if (this.#next !== undefined && piece.offset !== this.#next) {
      return new AppError(
        'offset_mismatch',
        'A piece must start where the previous piece of the stream ended',
        {
          details: { length: this.#next, path: 'offset', line: this.#lines },
        },
      );
    }
    this.#field = piece.field;
    this.#next = piece.offset + piece.text.length;
    if (piece.text !== '') {
      this.#trace?.mark('piece', this.#id, piece.offset, this.#next);
      this.#queue(piece.offset, piece.text);
    }
    return undefined;
  }

  /**
   * The common line, checked without the schema: after the first piece, exactly `field` (the
   * stream's field, already checked appendable), an integer `offset` in range and a `text` that
   * `validateAppend` would accept. Anything else (undefined) goes through `validateAppend`, so
   * a bad line gets exactly the error the single append gives.
   */
  #sameFieldPiece(body: unknown): { field: string; offset: number; text: string } | undefined {
    if (this.#field === undefined || typeof body !== 'object' || body === null) return undefined;
    const { field, offset, text } = body as Record<string, unknown>;
    if (
      field !== this.#field ||
      typeof text !== 'string' ||
      typeof offset !== 'number' ||
      !Number.isInteger(offset) ||
      offset < 0 ||
      offset > MAX_OFFSET ||
      text.length > MAX_TEXT_LENGTH ||
      Object.keys(body).length !== 3 ||
      textProblem(text) !== undefined
    ) {
      return undefined;
    }
    return { field, offset, text };
  }

  #queue(offset: number, text: string): void {
    if (this.#pending) {
      this.#pending.parts.push(text);
      this.#pending.length += text.length;
    } else {
      this.#pending = { offset, parts: [text], length: text.length };
      if (this.#o.coalesceMs === 0) {
        // No window: due at once, committed once the chunk's other lines joined it (a microtask,
        // not a timer: setTimeout(0) waits ≥ 1 ms and the timers phase of a busy loop).
        this.#due = true;
        queueMicrotask(() => this.#flush());
      } else {
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#due = true;
          this.#flush();
        }, this.#o.coalesceMs);
      }
    }
    if (
      (this.#o.coalescePieces > 0 && this.#pending.parts.length >= this.#o.coalescePieces) ||
      this.#pending.length >= this.#o.maxPendingLength
    ) {
      this.#due = true;
      this.#flush();
    }
  }

  /**
   * Commits the pending pieces as one append, unless a commit is in flight (then once it is
   * committed: its answer, which waits for the bus to acknowledge its publish, is not waited for).
   */
  #flush(): void {
    if (this.#committing || !this.#pending) return;
    const pending = this.#pending;
    this.#trace?.mark('flush', this.#id, pending.offset, pending.offset + pending.length);
    this.#pending = undefined;
    this.#due = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#committing = true;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#committing = false;
      if (this.#deps.isDraining()) this.#stop();
      if (this.#pending && (this.#due || this.#stopped)) this.#flush();
    };
    const answered = this.#commit(pending, release).finally(() => {
      this.#unanswered.delete(answered);
      release();
    });
    this.#unanswered.add(answered);
  }

  /** Waits until nothing is pending, in flight or unanswered (a failed commit drops what is pending). */
  async #drain(): Promise<void> {
    for (;;) {
      if (this.#unanswered.size > 0) await Promise.all(this.#unanswered);
      else if (this.#pending && !this.#commitFailed) this.#flush();
      else return;
    }
  }

  async #commit(pending: Pending, committed: () => void): Promise<void> {
    if (this.#commitFailed) return;
    const text = pending.parts.length === 1 ? pending.parts[0]! : pending.parts.join('');
    const end = pending.offset + text.length;
    const fail = (error: AppError) => {
      this.#commitFailed = true;
      this.#error ??= error;
      this.#pending = undefined;
      this.#stop();
    };
    if (this.#principal.exp * 1000 <= (this.#deps.now ?? Date.now)()) {
      return fail(new AppError('unauthorized', 'The token expired; open a new stream with a fresh one'));
    }
    const decision = this.#deps.charge(this.#principal.sub);
    if (!decision.allowed) {
      return fail(
        new AppError('rate_limited', 'Too many commits; retry later', {
          details: { retryAfterSeconds: decision.retryAfterSeconds },
        }),
      );
    }
    try {
      let outcomes: MutationOutcome[];
      try {
        outcomes = await this.#deps.commit(
          { principal: this.#principal, mutations: [this.#plan(pending.offset, text)] },
          committed,
        );
      } catch (err) {
        const split = this.#resumeSplit(err, pending, text);
        if (!split) throw err;
        // The field already holds the head of these pieces (committed before a lost answer, say):
        // the head is checked as an exact retry and the rest appended, both in one member.
        outcomes = await this.#deps.commit({ principal: this.#principal, mutations: split }, committed);
      }
      this.#deps.count(this.#model.name, 'ok');
      this.#scope ??= outcomes[0]?.body.scope ?? null;
      const syncId = outcomes.findLast((o) => o.body.syncId !== undefined)?.body.syncId;
      this.#send({ offset: pending.offset, length: end, ...(syncId !== undefined ? { syncId } : {}) });
    } catch (err) {
      const error = toAppError(err);
      this.#deps.count(
        this.#model.name,
        error.code === 'offset_mismatch' ? 'conflict' : error.status < 500 ? 'client_error' : 'error',
      );
      if (error.status >= 500) this.#deps.log.error({ err, id: this.#id }, 'append stream commit failed');
      fail(error);
    }
  }

  /**
   * After `offset_mismatch` with a length at which one of the pending pieces starts: the pieces
   * before it are checked as exact retries and the rest appended at the length, in one member —
   * what sending each piece on its own would have done (a writer resuming after a lost answer
   * sends the same pieces again). A length inside a piece stays a mismatch, as it would alone.
   */
  #resumeSplit(err: unknown, pending: Pending, text: string): PlannedAppend[] | undefined {
    if (!(err instanceof AppError) || err.code !== 'offset_mismatch') return undefined;
    const length = (err.details as { length?: unknown } | undefined)?.length;
    if (typeof length !== 'number') return undefined;
    let cut = 0;
    for (const part of pending.parts) {
      if (pending.offset + cut === length) break;
      cut += part.length;
    }
    if (cut === 0 || cut >= text.length || pending.offset + cut !== length) return undefined;
    return [this.#plan(pending.offset, text.slice(0, cut)), this.#plan(length, text.slice(cut))];
  }

  #plan(offset: number, text: string): PlannedAppend {
    return {
      action: 'append',
      model: this.#model.name,
      def: this.#model,
      id: this.#id,
      append: { field: this.#field!, offset, text },
      scope: this.#scope,
      mutationId: null,
      requestHash: '',
      at: LINE,
    };
  }

  /**
   * Sends one line of the answer. Through the web stream @hono/node-server reads the answer from,
   * a line costs an enqueue, a read promise and a pull, once per reply per commit. Under
   * @hono/node-server the lines therefore go straight to the Node response as soon as that is
   * safe: its head (status and every header the middleware set: CORS, X-Request-Id) is out, and
   * a read of the web stream waits on an empty queue, so every chunk enqueued before has been
   * written. From then on nothing is enqueued again; the web stream stays open, with that read
   * waiting, until `run` closes it, which ends the response after the last line written here.
   */
  #send(line: StreamAck | object): void {
    if (this.#gone || !this.#out) return;
    const text = `${JSON.stringify(line)}\n`;
    const response = this.#response;
    if (!this.#direct && this.#readerWaiting && response?.headersSent) this.#direct = true;
    if (this.#direct) {
      if (response!.destroyed || response!.writableEnded) this.#gone = true;
      else response!.write(text);
      return;
    }
    // This chunk fulfils the waiting read, if any; the next read calls `pull` again.
    this.#readerWaiting = false;
    try {
      this.#out.enqueue(encoder.encode(text));
    } catch {
      this.#gone = true;
    }
  }
}

function concat(parts: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
