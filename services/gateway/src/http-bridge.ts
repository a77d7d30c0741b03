import { STATUS_CODES } from 'node:http';
import { bearerToken, type Logger } from '@openagents/sync-server-kit';
import type { HttpRequest, HttpResponse } from './uws';

/** A fetch-style handler: what Hono's `app.fetch` is. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface BridgeOptions {
  /** Largest request body accepted; a bigger one is answered 413 without calling the handler. */
  maxBodyBytes: number;
  log: Logger;
  /**
   * Verifies a bearer token (true when valid). When given, a request with a body (any method but
   * GET, HEAD, OPTIONS) must carry a valid `Authorization: Bearer` token: without one it is
   * answered 401 before any of its body is read, with an invalid one 401 as soon as the check
   * fails (the body read so far is dropped). The handler never sees an unauthenticated body, and
   * an anonymous client cannot make the bridge buffer one.
   */
  authenticate?: (token: string) => Promise<boolean>;
  /** Counts an unexpected error caught in the bridge (the gateway's handler-errors metric). */
  onError?: (err: unknown) => void;
  /**
   * Requests whose body is handed to the handler AS IT ARRIVES, as a `ReadableStream`, instead of
   * being buffered whole: true for routes whose handler bounds the body itself (the API's
   * streaming upload, `POST /api/<path>/<id>/append-stream`, bounds each line and the stream).
   * `maxBodyBytes` does not bound such a body, only what arrives before its token is verified.
   * Every other body, chunked or not, is buffered and bounded as before: handlers that read a
   * body whole (`c.req.json()`) rely on the bridge's 413. Default: none.
   */
  streamsBody?: (method: string, path: string) => boolean;
}

/**
 * Origin of every bridged request's URL. The URL is never built from the Host header: a client
 * controls that header, and `Host: x/sync/bootstrap?scope=…#` once rewrote the path the API saw.
 * The Host header itself is passed on untouched, for handlers that check it.
 */
export const INTERNAL_ORIGIN = 'http://bridge.internal';

/** Methods that carry no body and are never authenticated by the bridge. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Content types whose body means something piece by piece: a Response of one of them (without a
 * Content-Length) is written as it streams, each chunk when it comes. Any other Response is read
 * whole and written in one corked write with its length.
 */
const STREAMING_CONTENT_TYPES = new Set(['application/x-ndjson', 'application/jsonl', 'text/event-stream']);

/**
 * Bytes a streamed request body may queue for its handler before the socket is paused (uWS
 * `pause()`, TCP backpressure to the client); reading it resumes the socket.
 */
const STREAMED_BODY_HIGH_WATER_BYTES = 64 * 1024;

/**
 * uWS cuts an HTTP request after 10 s without a byte either way (HTTP_IDLE_TIMEOUT_S, fixed in this
 * build): a streamed reply that pauses longer (a tool call) would be cut. While a streamed body is
 * open, its idle timer is re-armed this often (`pause()` clears it, `resume()` sets it again);
 * how long a stream may stay idle is the handler's to decide (the API's is 30 s).
 */
const STREAMED_BODY_KEEPALIVE_MS = 4_000;

/** Headers uWS writes itself; copying them from a Response would duplicate them. */
const SKIPPED_RESPONSE_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'date']);

/**
 * Serves one uWS HTTP request with a fetch-style handler, so Hono apps (the API, the delta
 * service) can share the gateway's port in the standalone server.
 *
 * uWS rules this follows: everything of `req` is read before the first return or await (it is
 * invalid afterwards); `onAborted` is attached at once, and nothing is written after an abort;
 * the body arrives in `onData` chunks that must be copied (their ArrayBuffers are neutered after
 * the callback); writes happen inside `cork` so status, headers and body leave in one syscall.
 * A body the options stream (`streamsBody`) reaches the handler as a `ReadableStream` with
 * backpressure (`StreamedBody`), and a streaming Response is written as it comes
 * (`streamResponse`); everything else is buffered whole, as these rules describe. Nothing here may throw into uWS (that would end the process): a request that cannot be turned
 * into a fetch Request (say, a header that is not a byte string) is answered 400, anything
 * unexpected 500.
 */
export function bridgeHttp(
  res: HttpResponse,
  req: HttpRequest,
  handler: FetchHandler,
  options: BridgeOptions,
) {
  let aborted = false;
  const controller = new AbortController();
  try {
    res.onAborted(() => {
      aborted = true;
      controller.abort();
    });
    serveBridged(res, req, handler, options, controller, () => aborted);
  } catch (err) {
    options.onError?.(err);
    options.log.error({ err: (err as Error).message }, 'http bridge failed');
    if (aborted) return;
    try {
      writeJson(res, 500, { error: { code: 'internal', message: 'Internal error' } });
    } catch {}
  }
}

function serveBridged(
  res: HttpResponse,
  req: HttpRequest,
  handler: FetchHandler,
  options: BridgeOptions,
  controller: AbortController,
  isAborted: () => boolean,
) {
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const query = req.getQuery();
  const rawPath = req.getUrl();
  const headers = new Headers();
  let badHeader = false;
  req.forEach((key, value) => {
    try {
      headers.append(key, value);
    } catch {
      badHeader = true;
    }
  });
  if (badHeader || !rawPath.startsWith('/')) {
    refuse(res, 400, 'bad_request', 'Malformed request (request target or header)', isAborted);
    return;
  }
  const url = INTERNAL_ORIGIN + rawPath + (query ? `?${query}` : '');
  const streamed = !BODYLESS_METHODS.has(method) && options.streamsBody?.(method, rawPath) === true;
  const exchange: Exchange = { res, signal: controller.signal, isAborted, ended: false, bodyDone: true };
  const run = runner(exchange, { url, method, headers }, handler, options.log, streamed);

  if (method === 'GET' || method === 'HEAD') {
    res.onData(() => {});
    run(undefined);
    return;
  }
  const declaredHeader = headers.get('content-length');
  const declared = declaredHeader === null ? 0 : Number(declaredHeader);
  if (!Number.isSafeInteger(declared) || declared < 0) {
    refuse(res, 400, 'bad_request', 'Invalid Content-Length', isAborted);
    return;
  }
  if (streamed) {
    exchange.bodyDone = false;
    streamBodyThenRun(exchange, method, headers, options, run);
    return;
  }
  if (declared > options.maxBodyBytes) {
    tooLarge(res, options.maxBodyBytes, isAborted);
    return;
  }
  readBodyThenRun(res, method, headers, options, isAborted, run);
}

/** One bridged request and response, as the streamed paths share it. */
interface Exchange {
  res: HttpResponse;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  isAborted: () => boolean;
  /** The response has been ended (or refused): `res` may no longer be touched. */
  ended: boolean;
  /** The whole request body has arrived (or there is none). */
  bodyDone: boolean;
  /** Runs just before the response ends: a streamed body stops handing on and unpauses. */
  beforeEnd?: () => void;
}

/** `res` may still be used: neither aborted nor ended. */
const usable = (x: Exchange) => !x.ended && !x.isAborted();

/**
 * The call of the handler with the request's body (bytes, a stream, or none), and the writing of
 * its Response: streamed when the request was, or when its content type is a streaming one.
 */
function runner(
  exchange: Exchange,
  target: { url: string; method: string; headers: Headers },
  handler: FetchHandler,
  log: Logger,
  streamed: boolean,
): (body: Uint8Array | ReadableStream<Uint8Array> | undefined) => void {
  const respond = (response: Response) =>
    streamed || streamsResponse(response)
      ? streamResponse(exchange, response, log)
      : writeResponse(exchange.res, response, exchange.isAborted, log);
  return (body) => {
    let request: Request;
    try {
      request = new Request(target.url, {
        method: target.method,
        headers: target.headers,
        signal: exchange.signal,
        // Bytes are copied: a pooled Buffer's memory is not the request's to keep.
        ...(body
          ? { body: body instanceof ReadableStream ? body : new Uint8Array(body), duplex: 'half' }
          : {}),
      } as RequestInit);
    } catch {
      void respond(jsonResponse(400, 'bad_request', 'Malformed request'));
      return;
    }
    Promise.resolve()
      .then(() => handler(request))
      .then(respond, (err) => {
        log.error({ err: (err as Error).message, method: target.method }, 'http handler failed');
        return respond(jsonResponse(500, 'internal', 'Internal error'));
      })
      .catch((err) => log.warn({ err: (err as Error).message }, 'writing a response failed'));
  };
}

/**
 * Reads a request body of at most `maxBodyBytes` and hands it to `run` once it is complete and
 * (where `authenticate` is set) its bearer token verified; refuses it (413/401) otherwise.
 */
function readBodyThenRun(
  res: HttpResponse,
  method: string,
  headers: Headers,
  options: BridgeOptions,
  isAborted: () => boolean,
  run: (body: Uint8Array) => void,
): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let refused = false;
  let complete = false;
  /** Until the token is verified the body is not handed to anyone. */
  let authenticated = !options.authenticate || BODYLESS_METHODS.has(method);
  res.onData((chunk, isLast) => {
    if (refused || isAborted()) return;
    received += chunk.byteLength;
    if (received > options.maxBodyBytes) {
      refused = true;
      tooLarge(res, options.maxBodyBytes, isAborted);
      return;
    }
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    complete = true;
    if (authenticated) run(Buffer.concat(chunks, received));
  });
  if (authenticated) return;

  const token = bearerToken(headers.get('authorization'));
  if (!token) {
    refused = true;
    refuse(res, 401, 'unauthorized', 'Missing bearer token', isAborted);
    return;
  }
  // The token is checked while the body arrives (an HMAC takes microseconds; the body is
  // bounded by maxBodyBytes meanwhile) and the handler runs only once both are done. A bad token
  // ends the request at once: what was buffered is dropped and the rest is never read.
  checkToken(token, options, {
    stillWanted: () => !refused && !isAborted(),
    valid: () => {
      authenticated = true;
      if (complete) run(Buffer.concat(chunks, received));
    },
    invalid: () => {
      refused = true;
      chunks.length = 0;
      refuse(res, 401, 'unauthorized', INVALID_TOKEN, isAborted);
    },
  });
}

const INVALID_TOKEN = 'Invalid or expired token';

/**
 * Verifies a request's bearer token with `options.authenticate` and calls `valid` or `invalid`
 * (also when the check itself fails), unless the request is no longer `stillWanted` by then.
 */
function checkToken(
  token: string,
  options: BridgeOptions,
  then: { stillWanted: () => boolean; valid: () => void; invalid: () => void },
): void {
  options.authenticate!(token)
    .then(
      (valid) => {
        if (!then.stillWanted()) return;
        if (valid) then.valid();
        else then.invalid();
      },
      () => {
        if (then.stillWanted()) then.invalid();
      },
    )
    .catch((err) => {
      options.onError?.(err);
      options.log.warn({ err: (err as Error).message }, 'http bridge authentication failed');
    });
}

/**
 * Hands a request body to `run` as a stream while it arrives (`streamsBody`), once its bearer
 * token verifies (where `authenticate` is set): without a token it is answered 401 before any
 * of it is read, with a bad one 401 once the check fails. Until then the socket is paused and
 * what uWS had already read is held, at most `maxBodyBytes` (413 past that).
 */
function streamBodyThenRun(
  exchange: Exchange,
  method: string,
  headers: Headers,
  options: BridgeOptions,
  run: (body: ReadableStream<Uint8Array>) => void,
): void {
  const { res } = exchange;
  const body = new StreamedBody(exchange, options.maxBodyBytes);
  res.onData((chunk, isLast) => {
    try {
      body.push(chunk, isLast);
    } catch (err) {
      // Nothing may throw into uWS; a stream that cannot take a chunk ends the exchange.
      options.onError?.(err);
      if (usable(exchange)) {
        exchange.ended = true;
        res.close();
      }
    }
  });
  const refuseWith = (status: 401 | 413, message: string) => {
    if (!usable(exchange)) return;
    body.drop();
    exchange.ended = true;
    if (status === 413) tooLarge(res, options.maxBodyBytes, exchange.isAborted);
    else refuse(res, 401, 'unauthorized', message, exchange.isAborted);
  };
  body.onOverflow = () => refuseWith(413, '');
  if (!options.authenticate || BODYLESS_METHODS.has(method)) {
    run(body.open());
    return;
  }
  const token = bearerToken(headers.get('authorization'));
  if (!token) {
    refuseWith(401, 'Missing bearer token');
    return;
  }
  // Nothing more is read until the token is known good: an HMAC takes microseconds.
  body.pause();
  checkToken(token, options, {
    stillWanted: () => usable(exchange) && !body.dropped,
    valid: () => run(body.open()),
    invalid: () => refuseWith(401, INVALID_TOKEN),
  });
}

/**
 * A request body as a web `ReadableStream` fed from uWS `onData`: each chunk copied (uWS neuters
 * it after the callback) and enqueued; the socket is paused while the stream holds
 * STREAMED_BODY_HIGH_WATER_BYTES its reader has not taken, and resumed when the reader pulls, so
 * a slow handler slows the client instead of filling memory. A client that goes away errors the
 * stream (the handler's read throws); a handler that cancels it leaves the rest unread.
 */
class StreamedBody {
  /** The limit on bytes held before the stream is opened (while the token is checked). */
  readonly #maxHeldBytes: number;
  readonly #exchange: Exchange;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #paused = false;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  dropped = false;
  onOverflow: () => void = () => {};

  constructor(exchange: Exchange, maxHeldBytes: number) {
    this.#exchange = exchange;
    this.#maxHeldBytes = maxHeldBytes;
    exchange.beforeEnd = () => this.drop();
    exchange.signal.addEventListener('abort', () => this.#error(), { once: true });
  }

  /** The stream, with what was held before it opened; the socket reads again. */
  open(): ReadableStream<Uint8Array> {
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
          for (const chunk of this.#held) controller.enqueue(chunk);
          this.#held = [];
          if (this.#exchange.bodyDone) controller.close();
        },
        pull: () => this.#resume(),
        cancel: () => this.drop(),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: STREAMED_BODY_HIGH_WATER_BYTES }),
    );
    this.#resume();
    this.#keepAlive = setInterval(() => this.#rearmIdleTimer(), STREAMED_BODY_KEEPALIVE_MS);
    this.#keepAlive.unref();
    return stream;
  }

  push(chunk: ArrayBuffer, isLast: boolean): void {
    if (isLast) this.#exchange.bodyDone = true;
    if (this.dropped) return;
    const copy = new Uint8Array(chunk.slice(0));
    const controller = this.#controller;
    if (!controller) {
      this.#heldBytes += copy.byteLength;
      if (this.#heldBytes > this.#maxHeldBytes) {
        this.onOverflow();
        return;
      }
      if (copy.byteLength > 0) this.#held.push(copy);
      return;
    }
    if (copy.byteLength > 0) controller.enqueue(copy);
    if (isLast) controller.close();
    else if ((controller.desiredSize ?? 0) <= 0) this.pause();
  }

  /** Nothing more is handed on (refused, or cancelled by the handler); the socket reads again. */
  drop(): void {
    this.dropped = true;
    this.#held = [];
    clearInterval(this.#keepAlive);
    this.#resume();
  }

  /** While not paused (a paused socket has no idle timer), `pause` + `resume` re-arm it. */
  #rearmIdleTimer(): void {
    if (!usable(this.#exchange)) {
      clearInterval(this.#keepAlive);
      return;
    }
    if (this.#paused) return;
    this.#exchange.res.pause();
    this.#exchange.res.resume();
  }

  pause(): void {
    if (this.#paused || !usable(this.#exchange)) return;
    this.#paused = true;
    this.#exchange.res.pause();
  }

  #resume(): void {
    if (!this.#paused || !usable(this.#exchange)) return;
    this.#paused = false;
    this.#exchange.res.resume();
  }

  #error(): void {
    clearInterval(this.#keepAlive);
    if (this.#exchange.bodyDone || this.dropped) return;
    try {
      this.#controller?.error(new Error('The client went away mid-body'));
    } catch {}
  }
}

/** A Response to write as it streams: a streaming content type and no declared length. */
function streamsResponse(response: Response): boolean {
  const type = response.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  return STREAMING_CONTENT_TYPES.has(type) && !response.headers.has('content-length');
}

/**
 * Writes a Response chunk by chunk as its body yields them (chunked transfer): the head goes with
 * the first chunk (uWS writes nothing before it), each chunk in its own cork, and after a write
 * that met backpressure the next read waits for `onWritable`. A client that goes away cancels the
 * body. A body that fails before anything was written is answered 500; after, the connection is
 * closed (the client sees a cut body, not a complete one).
 */
async function streamResponse(exchange: Exchange, response: Response, log: Logger): Promise<void> {
  const { res } = exchange;
  if (!response.body) {
    await writeResponse(res, response, exchange.isAborted, log);
    exchange.ended = true;
    return;
  }
  const reader = response.body.getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  exchange.signal.addEventListener('abort', cancel, { once: true });
  let headWritten = false;
  const head = () => {
    headWritten = true;
    writeHead(res, response);
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (!usable(exchange)) return cancel();
      if (done) break;
      if (value.byteLength === 0) continue;
      let ok = true;
      res.cork(() => {
        if (!headWritten) head();
        ok = res.write(value);
      });
      if (!ok) await writable(exchange);
    }
  } catch (err) {
    log.error({ err: (err as Error).message }, 'reading a response body failed');
    if (!usable(exchange)) return;
    exchange.ended = true;
    if (headWritten) res.close();
    else writeJson(res, 500, { error: { code: 'internal', message: 'Internal error' } });
    return;
  } finally {
    exchange.signal.removeEventListener('abort', cancel);
  }
  if (!usable(exchange)) return;
  exchange.beforeEnd?.();
  exchange.ended = true;
  // The connection stays open: uWS reads and discards what is left of an unread request body
  // (`end(…, true)` after chunks would put a stray header into the body).
  res.cork(() => {
    if (!headWritten) head();
    res.end();
  });
}

/** Resolves when uWS has room for more (`onWritable`), or when the client goes away. */
function writable(exchange: Exchange): Promise<void> {
  return new Promise((resolve) => {
    const gone = () => resolve();
    exchange.signal.addEventListener('abort', gone, { once: true });
    exchange.res.onWritable(() => {
      exchange.signal.removeEventListener('abort', gone);
      // Not resolved here: uWS runs no microtask checkpoint after this callback, so the writer's
      // continuation would wait for some other event (seen: an answer stuck mid-body for good).
      setImmediate(resolve);
      return true;
    });
  });
}

function writeHead(res: HttpResponse, response: Response): void {
  res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ''}`.trimEnd());
  response.headers.forEach((value, key) => {
    if (!SKIPPED_RESPONSE_HEADERS.has(key)) res.writeHeader(key, value);
  });
}

/** Answers with a JSON error and closes the connection (the rest of any body is not read). */
function refuse(res: HttpResponse, status: number, code: string, message: string, isAborted: () => boolean) {
  if (isAborted()) return;
  res.cork(() => {
    res
      .writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`.trimEnd())
      .writeHeader('content-type', 'application/json');
    res.end(JSON.stringify({ error: { code, message } }), true);
  });
}

function tooLarge(res: HttpResponse, limit: number, isAborted: () => boolean): void {
  if (isAborted()) return;
  const body = JSON.stringify({
    error: { code: 'payload_too_large', message: `Request body exceeds ${limit} bytes` },
  });
  res.cork(() => {
    res.writeStatus('413 Payload Too Large').writeHeader('content-type', 'application/json');
    // Close the connection: the rest of the oversized body is not worth reading.
    res.end(body, true);
  });
}

function jsonResponse(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

async function writeResponse(
  res: HttpResponse,
  response: Response,
  isAborted: () => boolean,
  log: Logger,
): Promise<void> {
  let body: ArrayBuffer;
  try {
    body = await response.arrayBuffer();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'reading a response body failed');
    body = new TextEncoder().encode(
      JSON.stringify({ error: { code: 'internal', message: 'Internal error' } }),
    ).buffer as ArrayBuffer;
    response = new Response(null, { status: 500, headers: { 'content-type': 'application/json' } });
  }
  if (isAborted()) return;
  res.cork(() => {
    writeHead(res, response);
    res.end(body);
  });
}

/** Writes a JSON body with a status; used by the gateway's own answers (401/429/503 on upgrade, 404). */
export function writeJson(
  res: HttpResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.cork(() => {
    res.writeStatus(`${status} ${STATUS_CODES[status] ?? ''}`.trimEnd());
    res.writeHeader('content-type', 'application/json');
    for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
    res.end(JSON.stringify(body));
  });
}
