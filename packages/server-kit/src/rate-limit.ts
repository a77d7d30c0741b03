import { LRUCache } from 'lru-cache';

export interface RateLimitOptions {
  /** Sustained requests per second; 0 disables the limiter. */
  perSecond: number;
  /** Requests allowed at once before the sustained rate applies. */
  burst: number;
  /** Subjects tracked at most; the least recently seen are forgotten (they start full again). */
  maxSubjects?: number;
  /** Clock in ms, replaceable in tests. */
  now?: () => number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface RateLimiter {
  /** Takes one token from `subject`'s bucket. */
  take(subject: string): RateDecision;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per subject (the token's `sub`), local to this worker: with N workers behind a
 * load balancer a subject gets up to N times the rate, which is the point — it protects each
 * worker's pool from one noisy client, it is not a billing quota. Memory is bounded by the LRU.
 */
export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const { perSecond, burst } = options;
  const now = options.now ?? Date.now;
  if (perSecond <= 0) return { take: () => ({ allowed: true }) };
  const buckets = new LRUCache<string, Bucket>({ max: options.maxSubjects ?? 10_000 });
  return {
    take(subject) {
      const t = now();
      const bucket = buckets.get(subject) ?? { tokens: burst, at: t };
      const tokens = Math.min(burst, bucket.tokens + ((t - bucket.at) / 1000) * perSecond);
      if (tokens >= 1) {
        buckets.set(subject, { tokens: tokens - 1, at: t });
        return { allowed: true };
      }
      buckets.set(subject, { tokens, at: t });
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
    },
  };
}
