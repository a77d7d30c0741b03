import { isRetryable } from './backoff';

/** What a write that did not succeed should do next: retry later, refresh the token, or give up. */
export type HttpFailure =
  | { kind: 'retry'; status: number; message: string; retryAfterMs: number }
  | { kind: 'unauthorized'; body: unknown }
  | { kind: 'rejected'; status: number; body: unknown };

/**
 * Classifies a non-success answer of the write endpoints, shared by the mutation sender and the
 * stream writer so both follow one retry policy: 401 refreshes the token, 429/5xx retry after
 * `Retry-After` (capped at 300 s), any other 4xx is final.
 */
export function httpFailure(res: Response, payload: unknown): HttpFailure {
  if (res.status === 401) return { kind: 'unauthorized', body: payload };
  if (isRetryable(res.status)) {
    const retryAfter = Number(res.headers.get('retry-after'));
    return {
      kind: 'retry',
      status: res.status,
      message: `HTTP ${res.status}`,
      retryAfterMs: Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter, 300) * 1000 : 0,
    };
  }
  return { kind: 'rejected', status: res.status, body: payload };
}

/** A failure of the request itself (no answer): always worth a retry. */
export function networkFailure(error: unknown): HttpFailure {
  return { kind: 'retry', status: 0, message: `network error: ${String(error)}`, retryAfterMs: 0 };
}
