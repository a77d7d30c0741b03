/**
 * Capped exponential backoff with full jitter: the one retry-delay policy of the system. Lives in
 * the protocol package because both the browser client (reconnects, mutation retries) and the
 * servers (Redis reconnects, gateway catch-up retries and gap-fill holds) import it; it is pure
 * and has no dependencies.
 */

/** Tuning of a backoff: reconnects, retries. */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. */
  initialDelayMs: number;
  /** The bound grows by this factor per attempt… */
  multiplier: number;
  /** …until it reaches this cap, in ms. */
  maxDelayMs: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random: () => number;
}

/** Defaults of the client's reconnects and mutation retries; servers pass their own bounds. */
export const BACKOFF_DEFAULTS: Readonly<BackoffOptions> = Object.freeze({
  initialDelayMs: 500,
  multiplier: 2,
  maxDelayMs: 30_000,
  // Looked up at each call, so a test that stubs Math.random steers servers' backoffs too.
  random: () => Math.random(),
});

/**
 * Delay before retry number `attempt` (0 for the first retry): capped exponential backoff with
 * FULL jitter, i.e. a uniform draw in `[0, min(maxDelayMs, initialDelayMs * multiplier^attempt))`.
 *
 * Full jitter (rather than "base plus a little noise") matters when a gateway drains or restarts:
 * thousands of clients lose their socket in the same millisecond, and spreading each retry over
 * the whole window keeps them from arriving back as one wave.
 *
 * @example
 * setTimeout(reconnect, backoff(attempt++));
 */
export function backoff(attempt: number, options: Partial<BackoffOptions> = {}): number {
  const { initialDelayMs, multiplier, maxDelayMs, random } = { ...BACKOFF_DEFAULTS, ...options };
  const step = Math.max(0, Math.floor(Number.isFinite(attempt) ? attempt : 0));
  // Cap the exponent so a long outage never overflows to Infinity.
  const bound = Math.min(maxDelayMs, initialDelayMs * multiplier ** Math.min(step, 64));
  const r = random();
  const unit = r >= 0 && r < 1 ? r : 0;
  return Math.floor(unit * Math.max(0, bound));
}
