import { STATUS_CODES } from 'node:http';
import type { Logger } from '@openagents/sync-server-kit';
import type { HttpRequest, HttpResponse } from './uws';

/** A fetch-style handler: what Hono's `app.fetch` is. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

export interface BridgeOptions {
  /** Largest request body accepted; a bigger one is answered 413 without calling the handler. */
  maxBodyBytes: number;
  log: Logger;
}

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
 */
export function bridgeHttp(
  res: HttpResponse,
  req: HttpRequest,
  handler: FetchHandler,
  options: BridgeOptions,
) {
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const query = req.getQuery();
  const path = req.getUrl() + (query ? `?${query}` : '');
  const headers = new Headers();
  req.forEach((key, value) => {
    headers.append(key, value);
  });
  const host = headers.get('host') ?? 'localhost';
  const controller = new AbortController();
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
    controller.abort();
  });

  const respond = (response: Response) => writeResponse(res, response, () => aborted, options.log);
  const run = (body: Buffer | undefined) => {
    let request: Request;
    try {
      request = new Request(`http://${host}${path}`, {
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
  const declared = Number(headers.get('content-length') ?? '0');
  if (declared > options.maxBodyBytes) {
    tooLarge(res, options.maxBodyBytes, () => aborted);
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  let refused = false;
  res.onData((chunk, isLast) => {
    if (refused || aborted) return;
    received += chunk.byteLength;
    if (received > options.maxBodyBytes) {
      refused = true;
      tooLarge(res, options.maxBodyBytes, () => aborted);
      return;
    }
    chunks.push(Buffer.from(chunk.slice(0)));
    if (isLast) run(Buffer.concat(chunks, received));
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
