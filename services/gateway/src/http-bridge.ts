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
}

/**
 * Origin of every bridged request's URL. The URL is never built from the Host header: a client
 * controls that header, and `Host: x/sync/bootstrap?scope=…#` once rewrote the path the API saw.
 * The Host header itself is passed on untouched, for handlers that check it.
 */
export const INTERNAL_ORIGIN = 'http://bridge.internal';

/** Methods that carry no body and are never authenticated by the bridge. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

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
 * Nothing here may throw into uWS (that would end the process): a request that cannot be turned
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

  const respond = (response: Response) => writeResponse(res, response, isAborted, options.log);
  const run = (body: Buffer | undefined) => {
    let request: Request;
    try {
      request = new Request(url, {
        method,
        headers,
        signal: controller.signal,
        ...(body ? { body: new Uint8Array(body) } : {}),
      });
    } catch {
      void respond(jsonResponse(400, 'bad_request', 'Malformed request'));
      return;
    }
    Promise.resolve()
      .then(() => handler(request))
      .then(respond, (err) => {
        options.log.error({ err: (err as Error).message, method }, 'http handler failed');
        return respond(jsonResponse(500, 'internal', 'Internal error'));
      })
      .catch((err) => options.log.warn({ err: (err as Error).message }, 'writing a response failed'));
  };

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
  if (declared > options.maxBodyBytes) {
    tooLarge(res, options.maxBodyBytes, isAborted);
    return;
  }
  readBodyThenRun(res, method, headers, options, isAborted, run);
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
  run: (body: Buffer) => void,
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
  options.authenticate!(token)
    .then(
      (valid) => {
        if (refused || isAborted()) return;
        if (!valid) {
          refused = true;
          chunks.length = 0;
          refuse(res, 401, 'unauthorized', 'Invalid or expired token', isAborted);
          return;
        }
        authenticated = true;
        if (complete) run(Buffer.concat(chunks, received));
      },
      () => {
        if (refused || isAborted()) return;
        refused = true;
        chunks.length = 0;
        refuse(res, 401, 'unauthorized', 'Invalid or expired token', isAborted);
      },
    )
    .catch((err) => {
      options.onError?.(err);
      options.log.warn({ err: (err as Error).message }, 'http bridge authentication failed');
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
    res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ''}`.trimEnd());
    response.headers.forEach((value, key) => {
      if (!SKIPPED_RESPONSE_HEADERS.has(key)) res.writeHeader(key, value);
    });
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
