// The delay policy is shared with the servers, so it lives in the protocol package.
export { BACKOFF_DEFAULTS, type BackoffOptions, backoff } from '@openagents/sync-protocol';

/**
 * Whether an HTTP failure is worth retrying with the same idempotency key: network failures
 * (status 0), 429 and 5xx. Every other 4xx is a final answer about the request itself.
 */
export function isRetryable(status: number): boolean {
  return status === 0 || status === 429 || status >= 500;
}
