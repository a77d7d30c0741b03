// The per-subject token bucket moved to server-kit so the delta service limits reads with the
// same code; kept here under its old name for the API's imports.
export {
  createRateLimiter,
  type RateDecision,
  type RateLimiter,
  type RateLimitOptions,
} from '@openagents/sync-server-kit';
