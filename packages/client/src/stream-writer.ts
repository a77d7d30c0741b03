import {
  APPEND_STREAM_SEGMENT,
  APPENDABLE_FIELDS,
  MODEL_PATHS,
  type ModelName,
  type StreamAck,
  WriteResult,
} from '@openagents/sync-protocol';
import { type BackoffOptions, backoff } from './backoff';
import { MutationError, SyncClosedError } from './errors';
import { type HttpFailure, httpFailure, networkFailure } from './http-failure';
import { randomUuid } from './random-uuid';
import { UploadStream } from './stream-writer-upload';
import { TokenSource } from './token-source';

/** Models with at least one field that accepts appends (contract v1.1 §4). */
export type AppendableModel = {
  [M in ModelName]: (typeof APPENDABLE_FIELDS)[M] extends readonly [] ? never : M;
}[ModelName];

/** The fields of `M` that accept appends, e.g. `'content'` for `Message`. */
export type AppendableField<M extends AppendableModel> = (typeof APPENDABLE_FIELDS)[M][number];

/** What a finished stream reports: the field's length once every piece was durable. */
export interface StreamResult {
  /** The field's length after the last piece (UTF-16 code units). */
  length: number;
  /** The log id of the last append's event; undefined when nothing was sent. */
  syncId: number | undefined;
  /** How many requests carried the pieces: append requests, or streaming uploads opened. */
  requests: number;
}

/**
 * Streams text into one field of one record through `POST /api/<path>/<id>/append`.
 *
 * @example
 * const w = client.stream('Message', messageId, 'content');
 * for await (const token of llm) w.write(token);
 * await w.end(); // every piece is durable
 */
export interface StreamWriter {
  /**
   * Adds a piece. The first piece after a send opens a window (`coalesceMs`); the window's
   * pieces go out together, as ONE line or append, when it closes — by time, at `coalescePieces`
   * pieces, at `maxPieceLength` code units, or at `end()` — or, if a request is still in flight
   * then (`append`), with everything written meanwhile when it is answered. Throws after `end()`;
   * ignored after the stream failed (see `done`).
   */
  write(piece: string): void;
  /** No more pieces: resolves (as `done`) once every piece is durable. */
  end(): Promise<StreamResult>;
  /** Where the next piece will land: the field's length once everything written so far is durable. */
  readonly offset: number;
  /** The field's length the server has confirmed so far. */
  readonly durableOffset: number;
  /**
   * Settles after `end()` once everything is durable; rejects with a `MutationError` on a final
   * refusal (a 4xx other than 429, an `offset_mismatch` that is not our own piece, retries
   * exhausted) or `SyncClosedError` if stopped first. The writer never leaves it unhandled.
   */
  readonly done: Promise<StreamResult>;
  /** Stops: nothing more is sent; `done` rejects with `SyncClosedError` unless already settled. */
  close(): void;
}

export interface StreamWriterHooks {
  /** A retryable failure (network, 5xx, 429); the same piece is sent again after a backoff. */
  retrying?(attempts: number, message: string): void;
  /** A request was answered: `text` is durable at `offset` (`syncId`: its event, if it wrote one). */
  appended?(piece: { offset: number; text: string; syncId: number | undefined }): void;
  /** The stream failed for good; `done` rejects with the same error. */
  failed?(error: MutationError): void;
}

export interface StreamWriterOptions<M extends AppendableModel = AppendableModel> {
  /** Origin of the API, e.g. `https://sync.example.com` (no trailing `/api`). */
  baseUrl: string;
  model: M;
  id: string;
  field: AppendableField<M>;
  /** The field's length before the first piece (default 0: a message created empty). */
  offset?: number;
  /** A fixed bearer token, or a function returning a fresh one (or a client's `TokenSource`). */
  token?: string;
  getToken?: () => Promise<string>;
  tokens?: TokenSource;
  fetch?: typeof fetch;
  backoff?: Partial<BackoffOptions>;
  /** Retries of one piece before the stream fails (default: unbounded, like the client's writes). */
  maxRetries?: number;
  /** The longest piece one request carries, in UTF-16 code units (default 65,536). */
  maxPieceLength?: number;
  /** Sending waits for this first (the client passes the record's insert still in flight). */
  after?: Promise<unknown>;
  /** Aborting stops the writer as `close()` does. */
  signal?: AbortSignal;
  hooks?: StreamWriterHooks;
  /**
   * How the pieces travel (docs/client.md, "Streaming a reply"):
   * - `stream`: one streaming upload per reply (`…/append-stream`, NDJSON pieces in, acks out),
   *   reopened after a cut and resumed from the acknowledged length; falls back to `append` when
   *   the server or a proxy does not offer it (404/405/415, or no answer within `openTimeoutMs`).
   * - `append`: one `…/append` request per batch of pieces (batched while one is in flight).
   * - `auto` (default): `stream` in Node with its own fetch; `append` in browsers (they cannot
   *   read an answer while still sending the body) and with a custom `fetch`, which may not
   *   stream request bodies (pass `stream` to use it anyway).
   */
  upload?: 'auto' | 'stream' | 'append';
  /** Streaming upload: without an answer this long, a proxy buffers the body; fall back. */
  openTimeoutMs?: number;
  /**
   * Client-side batching (docs/client.md, "Streaming a reply"): the first piece written after a
   * send opens a window of this many ms; every piece written in it goes out as ONE line (`stream`)
   * or ONE append (`append`) when it closes, so one event (~400 bytes of envelope whatever it
   * carries) holds several tokens and each token waits at most the window. `end()` sends at once.
   * 0: no window, pieces go out in the tick they are written (those of one tick together).
   * Default 40: at 30 tokens/s a window holds ~2 tokens.
   */
  coalesceMs?: number;
  /** A window holding this many pieces (writes) closes at once (default 0: only time closes it). */
  coalescePieces?: number;
}

export const STREAM_WRITER_DEFAULTS = Object.freeze({
  maxPieceLength: 65_536,
  openTimeoutMs: 5_000,
  coalesceMs: 40,
  coalescePieces: 0,
});

/** Where the streaming upload works: Node's fetch sends a body and reads the answer at once. */
function streamingUploadAvailable(): boolean {
  const g = globalThis as { process?: { versions?: { node?: unknown } }; document?: unknown };
  return typeof g.process?.versions?.node === 'string' && g.document === undefined;
}

/**
 * A stream writer for agents: keeps the offset, batches pieces while a request is in flight,
 * retries a failed request with the same offset and text (an exact retry is answered 200 and
 * writes nothing, so a response lost after commit never doubles text), and never splits a
 * surrogate pair across requests. See docs/client.md, "Streaming a reply".
 *
 * @example
 * const w = createStreamWriter({ baseUrl, token, model: 'Message', id, field: 'content' });
 * w.write('Hel'); w.write('lo');
 * await w.end();
 */
export function createStreamWriter<M extends AppendableModel>(options: StreamWriterOptions<M>): StreamWriter {
  return new StreamWriterImpl(options);
}

type Outcome =
  | { kind: 'committed'; result: WriteResult }
  | { kind: 'mismatch'; length: number | undefined; body: unknown }
  | HttpFailure;

class StreamWriterImpl implements StreamWriter {
  readonly done: Promise<StreamResult>;
  #o: StreamWriterOptions;
  #url: string;
  #tokens: TokenSource;
  #fetch: typeof fetch;
  #maxPiece: number;
  /** Identifies this stream in errors (`MutationError.mutationId`). */
  #streamId = `stream:${randomUuid()}`;
  #offset: number;
  #durable: number;
  #buffer = '';
  #running = false;
  #ended = false;
  #settled = false;
  #syncId: number | undefined;
  #requests = 0;
  #mode: 'stream' | 'append';
  #streamUrl: string;
  /** Streaming upload in progress, if any. */
  #upload: UploadStream | undefined;
  /** Pieces sent on streaming uploads and not acknowledged yet, as sent (resent the same way). */
  #sent: { offset: number; text: string }[] = [];
  /** Pieces to send again, with their boundaries, before the buffer (after a fallback to append). */
  #replay: string[] = [];
  #feedQueued = false;
  #coalesceMs: number;
  #coalescePieces: number;
  /** True while a window holds the buffer: nothing of it may be sent until it closes. */
  #held = false;
  /** Pieces written in the open window. */
  #windowPieces = 0;
  #windowTimer: ReturnType<typeof setTimeout> | undefined;
  /** The request in flight, to cut it on close(). One per request: Node's fetch leaves its abort
   *  listener on the signal, so one signal shared by thousands of requests would pile them up. */
  #inflight: AbortController | undefined;
  #wake: (() => void) | undefined;
  #resolve!: (r: StreamResult) => void;
  #reject!: (e: unknown) => void;

  constructor(options: StreamWriterOptions) {
    const fields: readonly string[] = APPENDABLE_FIELDS[options.model] ?? [];
    if (!fields.includes(options.field)) {
      throw new TypeError(`${options.model}.${String(options.field)} does not accept appends`);
    }
    const start = options.offset ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) throw new TypeError(`bad offset ${String(start)}`);
    this.#o = options;
    const record = `${options.baseUrl.replace(/\/+$/, '')}/api/${MODEL_PATHS[options.model]}/${encodeURIComponent(options.id.toLowerCase())}`;
    this.#url = `${record}/append`;
    this.#streamUrl = `${record}/${APPEND_STREAM_SEGMENT}`;
    this.#mode =
      options.upload === 'stream' ||
      (options.upload !== 'append' && options.fetch === undefined && streamingUploadAvailable())
        ? 'stream'
        : 'append';
    this.#tokens =
      options.tokens ??
      new TokenSource({
        ...(options.token !== undefined ? { token: options.token } : {}),
        ...(options.getToken ? { getToken: options.getToken } : {}),
      });
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#maxPiece = Math.max(2, options.maxPieceLength ?? STREAM_WRITER_DEFAULTS.maxPieceLength);
    this.#coalesceMs = nonNegative('coalesceMs', options.coalesceMs ?? STREAM_WRITER_DEFAULTS.coalesceMs);
    this.#coalescePieces = nonNegative(
      'coalescePieces',
      options.coalescePieces ?? STREAM_WRITER_DEFAULTS.coalescePieces,
    );
    this.#offset = start;
    this.#durable = start;
    this.done = new Promise<StreamResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Whoever awaits `done` or `end()` still sees the rejection; an agent that only writes does
    // not crash its process with an unhandled one.
    this.done.catch(() => {});
    if (options.signal?.aborted) this.close();
    else options.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  get offset(): number {
    return this.#offset;
  }

  get durableOffset(): number {
    return this.#durable;
  }

  write(piece: string): void {
    if (typeof piece !== 'string') throw new TypeError('a piece must be a string');
    if (this.#ended) throw new Error('write after end()');
    if (this.#settled || piece === '') return;
    const opens = this.#coalesceMs > 0 && !this.#held && this.#buffer === '';
    this.#buffer += piece;
    this.#offset += piece.length;
    if (opens) {
      // The first piece since the last send opens a window; the timer closes it.
      this.#held = true;
      this.#windowPieces = 0;
      this.#windowTimer = setTimeout(() => {
        this.#windowTimer = undefined;
        this.#release();
      }, this.#coalesceMs);
    }
    if (!this.#held) {
      // No window (coalesceMs 0), or one closed while the transport was busy: this piece joins
      // the batch waiting for it.
      this.#kick();
      return;
    }
    this.#windowPieces++;
    if (
      (this.#coalescePieces > 0 && this.#windowPieces >= this.#coalescePieces) ||
      this.#buffer.length >= this.#maxPiece
    ) {
      this.#release();
    }
  }

  end(): Promise<StreamResult> {
    if (!this.#ended) {
      this.#ended = true;
      // The last pieces never wait out the window.
      this.#release();
      this.#kick();
    }
    return this.done;
  }

  close(): void {
    if (this.#settled) return;
    this.#release(false);
    this.#fail(new SyncClosedError());
    this.#inflight?.abort();
    this.#upload?.abort();
    this.#wake?.();
  }

  /** Closes the open window: its pieces may go (`send`: and they go now, as one line or request). */
  #release(send = true): void {
    if (this.#windowTimer !== undefined) clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    if (!this.#held) return;
    this.#held = false;
    if (!send || this.#settled) return;
    // On an open upload the window's pieces go out now, as one line; otherwise the pump sends
    // them as soon as the transport is free.
    if (this.#upload && !this.#feedQueued) this.#feed();
    else this.#kick();
  }

  #kick(): void {
    if (this.#upload) {
      // A streaming upload is open: the new pieces go onto it (same-tick pieces as one line).
      if (this.#feedQueued) return;
      this.#feedQueued = true;
      queueMicrotask(() => {
        this.#feedQueued = false;
        this.#feed();
      });
      return;
    }
    if (this.#running || this.#settled) return;
    this.#running = true;
    // A microtask first, so pieces written in the same tick go out as one request.
    void Promise.resolve()
      .then(() => this.#o.after)
      .catch(() => {})
      .then(() => (this.#mode === 'stream' ? this.#pumpStream() : this.#pump()));
  }

  /** Streaming upload: one request at a time, reopened and resumed until everything is durable. */
  async #pumpStream(): Promise<void> {
    let attempts = 0;
    let refreshed = false;
    try {
      while (!this.#settled) {
        if (this.#sent.length === 0 && this.#take() === '') {
          if (this.#ended && this.#buffer === '') this.#finish();
          return;
        }
        const token = await this.#tokens.get();
        if (this.#settled) return;
        const upload = new UploadStream({
          url: this.#streamUrl,
          token,
          fetch: this.#fetch,
          openTimeoutMs: this.#o.openTimeoutMs ?? STREAM_WRITER_DEFAULTS.openTimeoutMs,
          onAck: (ack) => {
            attempts = 0;
            this.#acknowledged(ack);
          },
        });
        this.#upload = upload;
        this.#requests++;
        // Resent as they were first sent: the server answers those already there as exact retries.
        for (const p of this.#sent) upload.send(p.offset, this.#o.field, p.text);
        this.#feed();
        const end = await upload.result;
        this.#upload = undefined;
        if (this.#settled) return;
        switch (end.kind) {
          case 'done':
            attempts = 0;
            break;
          case 'unsupported':
            this.#replay = this.#sent.map((p) => p.text);
            this.#sent = [];
            this.#mode = 'append';
            await this.#pump();
            return;
          case 'error': {
            const code = (end.body as { error?: { code?: unknown; details?: { length?: unknown } } } | null)
              ?.error;
            if (
              code?.code === 'offset_mismatch' &&
              code.details?.length === this.#offset - this.#buffer.length
            ) {
              // Everything sent is already there (answers lost before): durable.
              this.#acknowledged({ offset: this.#durable, length: code.details.length as number });
              break;
            }
            if (end.status === 401 && !refreshed) {
              refreshed = true;
              await this.#tokens.refresh();
              break;
            }
            if (end.status !== 429 && end.status < 500) {
              throw new MutationError(this.#streamId, end.status, end.body);
            }
            await this.#retryAfter(attempts++, end.status, `${end.status}`, end.retryAfterMs);
            break;
          }
          case 'cut':
            await this.#retryAfter(attempts++, 0, end.message, 0);
            break;
          default:
            unreachable(end);
        }
      }
    } catch (error) {
      this.#failWith(error);
    } finally {
      this.#upload = undefined;
      this.#running = false;
    }
  }

  /** Moves buffered pieces onto the open upload; closes its body once everything is on it. */
  #feed(): void {
    const upload = this.#upload;
    if (!upload || this.#settled) return;
    for (let text = this.#take(); text !== ''; text = this.#take()) {
      this.#buffer = this.#buffer.slice(text.length);
      const offset = this.#offset - this.#buffer.length - text.length;
      this.#sent.push({ offset, text });
      upload.send(offset, this.#o.field, text);
    }
    if (this.#ended && this.#buffer === '') upload.end();
  }

  #acknowledged(ack: StreamAck): void {
    if (ack.length <= this.#durable) return;
    const offset = this.#durable;
    let text = '';
    while (this.#sent.length > 0 && this.#sent[0]!.offset + this.#sent[0]!.text.length <= ack.length) {
      text += this.#sent.shift()!.text;
    }
    this.#durable = ack.length;
    if (ack.syncId !== undefined) this.#syncId = ack.syncId;
    this.#o.hooks?.appended?.({ offset, text, syncId: ack.syncId });
  }

  /** Waits before the next attempt, or throws once `maxRetries` are spent. */
  async #retryAfter(attempts: number, status: number, message: string, retryAfterMs: number): Promise<void> {
    if (attempts >= (this.#o.maxRetries ?? Number.POSITIVE_INFINITY)) {
      const code = status === 0 ? 'network_error' : `http_${status}`;
      throw new MutationError(this.#streamId, status, errorBody(code, message));
    }
    this.#o.hooks?.retrying?.(attempts + 1, message);
    await this.#sleep(Math.max(backoff(attempts, this.#o.backoff ?? {}), retryAfterMs));
  }

  #finish(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve({ length: this.#durable, syncId: this.#syncId, requests: this.#requests });
  }

  async #pump(): Promise<void> {
    try {
      while (!this.#settled) {
        const replayed = this.#replay.length > 0;
        const text = replayed ? this.#replay[0]! : this.#take();
        if (text === '') break;
        if (replayed) this.#replay.shift();
        else this.#buffer = this.#buffer.slice(text.length);
        const offset = this.#durable;
        this.#requests++;
        const syncId = await this.#deliver(offset, text);
        if (this.#settled) return;
        this.#durable = offset + text.length;
        if (syncId !== undefined) this.#syncId = syncId;
        this.#o.hooks?.appended?.({ offset, text, syncId });
      }
      if (this.#ended && this.#buffer === '' && this.#replay.length === 0) this.#finish();
    } catch (error) {
      this.#failWith(error);
    } finally {
      this.#running = false;
    }
  }

  /**
   * The next request's text: everything buffered up to `maxPieceLength`, except that a piece
   * never ends between the two halves of a surrogate pair (the server stores code points, and
   * half an emoji is not one) — a trailing high surrogate waits for its partner, or for `end()`.
   */
  #take(): string {
    if (this.#held) return ''; // a window is open: its pieces wait for it to close
    let text = this.#buffer.slice(0, this.#maxPiece);
    if (text.length > 0 && (text.length < this.#buffer.length || !this.#ended)) {
      const last = text.charCodeAt(text.length - 1);
      if (last >= 0xd800 && last <= 0xdbff) text = text.slice(0, -1);
    }
    return text;
  }

  /** Fails with what a pump caught: our own errors as they are, anything else as `stream_failed`. */
  #failWith(error: unknown): void {
    this.#fail(
      error instanceof MutationError || error instanceof SyncClosedError
        ? error
        : new MutationError(this.#streamId, 0, errorBody('stream_failed', String(error))),
    );
  }

  #fail(error: MutationError | SyncClosedError): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#buffer = '';
    this.#release(false);
    if (error instanceof MutationError) this.#o.hooks?.failed?.(error);
    this.#reject(error);
  }

  /** Sends one piece until it is durable; returns its event id. Throws a final refusal. */
  async #deliver(offset: number, text: string): Promise<number | undefined> {
    let attempts = 0;
    let refreshed = false;
    for (;;) {
      if (this.#settled) throw new SyncClosedError();
      const outcome = await this.#sendOnce(offset, text);
      if (this.#settled) throw new SyncClosedError();
      switch (outcome.kind) {
        case 'committed':
          return outcome.result.syncId;
        case 'mismatch':
          // Our own piece, already in place (an older server, or an answer lost in between):
          // durable. Anything else means someone else wrote this field, or our offset was wrong.
          if (outcome.length === offset + text.length) return undefined;
          throw new MutationError(this.#streamId, 409, outcome.body);
        case 'unauthorized':
          if (!refreshed) {
            refreshed = true;
            await this.#tokens.refresh();
            continue;
          }
          throw new MutationError(this.#streamId, 401, outcome.body);
        case 'rejected':
          throw new MutationError(this.#streamId, outcome.status, outcome.body);
        case 'retry': {
          if (attempts >= (this.#o.maxRetries ?? Number.POSITIVE_INFINITY)) {
            const code = outcome.status === 0 ? 'network_error' : `http_${outcome.status}`;
            throw new MutationError(this.#streamId, outcome.status, errorBody(code, outcome.message));
          }
          const delay = Math.max(backoff(attempts, this.#o.backoff ?? {}), outcome.retryAfterMs);
          attempts++;
          this.#o.hooks?.retrying?.(attempts, outcome.message);
          await this.#sleep(delay);
          break;
        }
        default:
          return unreachable(outcome);
      }
    }
  }

  async #sendOnce(offset: number, text: string): Promise<Outcome> {
    let res: Response;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const token = await this.#tokens.get();
      if (token) headers.authorization = `Bearer ${token}`;
      this.#inflight = new AbortController();
      res = await this.#fetch(this.#url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ field: this.#o.field, offset, text }),
        signal: this.#inflight.signal,
      });
    } catch (error) {
      return networkFailure(error);
    }
    const payload: unknown = await res.json().catch(() => null);
    if (res.ok) {
      const result = WriteResult.safeParse(payload);
      if (result.success) return { kind: 'committed', result: result.data };
      return {
        kind: 'rejected',
        status: res.status,
        body: errorBody('bad_response', 'unreadable append result'),
      };
    }
    if (res.status === 409) {
      const error = (payload as { error?: { code?: unknown; details?: { length?: unknown } } } | null)?.error;
      if (error?.code === 'offset_mismatch') {
        const length = error.details?.length;
        return { kind: 'mismatch', length: typeof length === 'number' ? length : undefined, body: payload };
      }
    }
    return httpFailure(res, payload);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new TypeError(`bad ${name} ${String(value)}`);
  return value;
}

function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

function unreachable(x: never): never {
  throw new Error(`unexpected outcome ${JSON.stringify(x)}`);
}
