import { describe, expect, it } from 'vitest';
import { newTokenBucket, takeToken } from './token-bucket';

const limits = { ratePerSecond: 10, burst: 3, closeAfter: 4 };

describe('takeToken', () => {
  it('allows a burst, then refuses, then closes a client that keeps flooding', () => {
    const bucket = newTokenBucket(limits.burst, 0);
    expect([1, 2, 3].map(() => takeToken(bucket, limits, 0))).toEqual(['ok', 'ok', 'ok']);
    expect([1, 2, 3].map(() => takeToken(bucket, limits, 0))).toEqual(['refuse', 'refuse', 'refuse']);
    expect(takeToken(bucket, limits, 0)).toBe('close');
  });

  it('refills at the rate and forgives refusals once a frame is accepted', () => {
    const bucket = newTokenBucket(limits.burst, 0);
    for (let i = 0; i < 3; i++) takeToken(bucket, limits, 0);
    expect(takeToken(bucket, limits, 0)).toBe('refuse');
    expect(takeToken(bucket, limits, 100)).toBe('ok');
    expect(bucket.refusedInARow).toBe(0);
    expect(takeToken(bucket, limits, 10_000)).toBe('ok');
    expect(bucket.tokens).toBeCloseTo(2);
  });
});
