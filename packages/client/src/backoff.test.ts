import { describe, expect, it } from 'vitest';
import { isRetryable } from './backoff';

describe('isRetryable', () => {
  it('retries network errors, 429 and 5xx, never other 4xx', () => {
    for (const s of [0, 429, 500, 502, 503, 504]) expect(isRetryable(s)).toBe(true);
    for (const s of [400, 401, 403, 404, 409, 410, 413, 415, 422]) expect(isRetryable(s)).toBe(false);
  });
});
