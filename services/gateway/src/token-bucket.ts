/** Token-bucket state of one connection; plain data kept in the socket's UserData. */
export interface TokenBucket {
  tokens: number;
  updatedAt: number;
  /** Frames refused in a row; reset by the next accepted frame. */
  refusedInARow: number;
}

export function newTokenBucket(burst: number, now: number): TokenBucket {
  return { tokens: burst, updatedAt: now, refusedInARow: 0 };
}

/**
 * Takes one token: 'ok' when the frame may be handled, 'refuse' when it is over the rate
 * (answer `rate_limited`), 'close' when the client kept sending through `closeAfter` refusals in
 * a row (close with 1008: it ignores the errors).
 */
export function takeToken(
  bucket: TokenBucket,
  limits: { ratePerSecond: number; burst: number; closeAfter: number },
  now: number,
): 'ok' | 'refuse' | 'close' {
  const elapsed = Math.max(0, now - bucket.updatedAt) / 1000;
  bucket.tokens = Math.min(limits.burst, bucket.tokens + elapsed * limits.ratePerSecond);
  bucket.updatedAt = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    bucket.refusedInARow = 0;
    return 'ok';
  }
  bucket.refusedInARow += 1;
  return bucket.refusedInARow >= limits.closeAfter ? 'close' : 'refuse';
}

/**
 * Whether a token is available, without taking it: refills the bucket to `now` and looks. Used
 * to refuse early (e.g. an IP over its failed-auth rate) while only a failure takes a token.
 */
export function hasToken(
  bucket: TokenBucket,
  limits: { ratePerSecond: number; burst: number },
  now: number,
): boolean {
  const elapsed = Math.max(0, now - bucket.updatedAt) / 1000;
  bucket.tokens = Math.min(limits.burst, bucket.tokens + elapsed * limits.ratePerSecond);
  bucket.updatedAt = now;
  return bucket.tokens >= 1;
}
