import { describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS, backoff } from './backoff';

describe('backoff', () => {
  it('stays within [0, bound) where the bound doubles per attempt', () => {
    for (let attempt = 0; attempt < 6; attempt++) {
      const bound = BACKOFF_DEFAULTS.initialDelayMs * 2 ** attempt;
      expect(backoff(attempt, { random: () => 0 })).toBe(0);
      expect(backoff(attempt, { random: () => 0.999999 })).toBeLessThan(bound);
      expect(backoff(attempt, { random: () => 0.999999 })).toBeGreaterThanOrEqual(bound - 1);
    }
  });

  it('is capped at maxDelayMs, even for huge or absurd attempts', () => {
    for (const attempt of [20, 1000, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY, Number.NaN, -3]) {
      const d = backoff(attempt, { random: () => 0.999999 });
      expect(d).toBeLessThan(BACKOFF_DEFAULTS.maxDelayMs);
      expect(Number.isFinite(d)).toBe(true);
    }
    expect(backoff(30, { random: () => 0.5, maxDelayMs: 1000 })).toBe(500);
  });

  it('spreads delays over the whole window (full jitter, not a fixed base)', () => {
    const samples = Array.from({ length: 2000 }, () => backoff(10));
    const cap = BACKOFF_DEFAULTS.maxDelayMs;
    const quarter = (lo: number, hi: number) => samples.filter((d) => d >= lo && d < hi).length;
    // Each quarter of [0, cap) gets a share; a jittered-base scheme would leave the low ones empty.
    for (let q = 0; q < 4; q++) expect(quarter((q * cap) / 4, ((q + 1) * cap) / 4)).toBeGreaterThan(300);
    expect(new Set(samples).size).toBeGreaterThan(1000);
  });

  it('honours custom options and ignores a random() outside [0, 1)', () => {
    expect(backoff(2, { initialDelayMs: 100, multiplier: 3, random: () => 0.5 })).toBe(450);
    expect(backoff(2, { random: () => 1.5 })).toBe(0);
    expect(backoff(2, { random: () => -1 })).toBe(0);
  });
});
