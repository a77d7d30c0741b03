import { BootstrapResponse, DeltaResponse, ErrorBody, MAX_HEADS_SCOPES } from '@openagents/sync-protocol';
import { AppError, type DeltaSource, type ReadOptions } from '@openagents/sync-server-kit';
import { z } from 'zod';

/**
 * `POST /sync/heads` `{ "scopes": [...] }` answers `{ "heads": { "<scope>": <lastId>, ... } }`
 * (like `GET /sync/heads?scope=a&scope=b`); an array `[{ "scope", "lastSyncId" }]` is accepted too.
 */
const HeadsResponse = z.object({
  heads: z.union([
    z.record(z.string(), z.number().int().nonnegative()),
    z.array(z.object({ scope: z.string(), lastSyncId: z.number().int().nonnegative() })),
  ]),
});

export interface HttpDeltaSourceOptions {
  /** Base URL of the delta service, e.g. http://delta:8082. */
  baseUrl: string;
  /** Bearer token (the gateway signs itself a service token with scopes ['*']). */
  token: string | (() => string | Promise<string>);
  fetch?: typeof fetch;
  /** Per-request timeout in ms (default 10 s). */
  timeoutMs?: number;
}

/**
 * A DeltaSource over the delta service's HTTP API. Answers are validated with the protocol
 * schemas. 410 becomes AppError `reset_required`; a network error, a timeout, a 5xx or an answer
 * that does not parse becomes `unavailable` (retry later); 401/403 become `internal` (the
 * gateway's own token was refused: a configuration problem, not the client's).
 */
export function createHttpDeltaSource(options: HttpDeltaSourceOptions): DeltaSource {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;

  const get = async <T>(
    path: string,
    schema: z.core.$ZodType<T>,
    json?: unknown,
    read: ReadOptions = {},
  ): Promise<T> => {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    let response: Response;
    let body: unknown;
    // A timer cleared once the answer is read, rather than AbortSignal.timeout: that one fires
    // (and runs fetch's abort handling) for every request, answered or not, timeoutMs later, a
    // cost a subscribe storm's thousands of requests pay all together ten seconds on.
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException('The operation timed out.', 'TimeoutError')),
      timeoutMs,
    );
    try {
      response = await doFetch(`${base}${path}`, {
        headers: requestHeaders(token, json, read),
        ...(json === undefined ? {} : { method: 'POST', body: JSON.stringify(json) }),
        signal: controller.signal,
      });
      body = await response.json().catch(() => undefined);
    } catch (err) {
      throw new AppError('unavailable', `delta service unreachable: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
    if (response.ok) {
      const parsed = z.safeParse(schema, body);
      if (!parsed.success)
        throw new AppError('unavailable', `delta service answered ${path} with an invalid body`);
      return parsed.data;
    }
    throw refusal(response.status, body);
  };

  return {
    bootstrap(scope, read) {
      const query = new URLSearchParams({ scope });
      if (read?.cursor !== undefined) query.set('cursor', read.cursor);
      return get(`/sync/bootstrap?${query}`, BootstrapResponse, undefined, read);
    },
    delta(scope, lastSyncId, limit, read) {
      const query = new URLSearchParams({ scope, lastSyncId: String(lastSyncId) });
      if (limit !== undefined) query.set('limit', String(limit));
      return get(`/sync/delta?${query}`, DeltaResponse, undefined, read);
    },
    async heads(scopes) {
      const heads = new Map<string, number>(scopes.map((s) => [s, 0]));
      if (scopes.length === 0) return heads;
      // POST carries long lists; more than the service's per-request maximum are split.
      const chunks: string[][] = [];
      for (let i = 0; i < scopes.length; i += MAX_HEADS_SCOPES) {
        chunks.push(scopes.slice(i, i + MAX_HEADS_SCOPES));
      }
      const answers = await Promise.all(
        chunks.map((chunk) => get('/sync/heads', HeadsResponse, { scopes: chunk })),
      );
      for (const answer of answers) {
        const entries = Array.isArray(answer.heads)
          ? answer.heads.map((h) => [h.scope, h.lastSyncId] as const)
          : Object.entries(answer.heads);
        for (const [scope, id] of entries) if (heads.has(scope)) heads.set(scope, id);
      }
      return heads;
    },
  };
}

function requestHeaders(token: string, json: unknown, read: ReadOptions): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    // A shared answer is acceptable: the delta service may hand out one it read for
    // another gateway this recently (whole seconds, as HTTP has them).
    ...(read.maxAgeMs !== undefined && read.maxAgeMs >= 1000
      ? { 'cache-control': `max-age=${Math.floor(read.maxAgeMs / 1000)}` }
      : {}),
    ...(json === undefined ? {} : { 'content-type': 'application/json' }),
  };
}

/** The error of a non-2xx answer: 410 is `reset_required`, 5xx and 429 `unavailable`, 400 `bad_request`. */
function refusal(status: number, body: unknown): AppError {
  const error = ErrorBody.safeParse(body);
  const message = error.success ? error.data.error.message : `HTTP ${status}`;
  if (status === 410) return new AppError('reset_required', message);
  if (status >= 500 || status === 429) return new AppError('unavailable', `delta service: ${message}`);
  if (status === 400) return new AppError('bad_request', `delta service: ${message}`);
  return new AppError('internal', `delta service refused the gateway (${status}): ${message}`);
}
