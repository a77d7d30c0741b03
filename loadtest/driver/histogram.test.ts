import { describe, expect, it } from 'vitest';
import { Histogram } from './histogram';

describe('Histogram', () => {
  it('answers percentiles within a bucket width of the exact values', () => {
    const h = new Histogram();
    for (let i = 1; i <= 1000; i++) h.record(i / 10);
    const s = h.summary();
    expect(s.count).toBe(1000);
    expect(s.min).toBe(0.1);
    expect(s.max).toBe(100);
    expect(s.med).toBeGreaterThan(50 * 0.97);
    expect(s.med).toBeLessThan(50 * 1.03);
    expect(s.p99).toBeGreaterThan(99 * 0.97);
    expect(s.p99).toBeLessThanOrEqual(100);
    expect(s.avg).toBeCloseTo(50.05, 5);
  });

  it('tells apart percentiles a fraction of a millisecond apart (0.1% buckets)', () => {
    for (const ms of [43.6, 44, 44.4, 45, 0.37, 1234.5]) {
      const h = new Histogram();
      h.record(ms / 2);
      for (let i = 0; i < 100; i++) h.record(ms);
      h.record(ms * 2);
      expect(Math.abs(h.percentile(50) - ms)).toBeLessThanOrEqual(ms * 0.0006);
    }
  });

  it('merges data from other histograms as if the samples were recorded once', () => {
    const a = new Histogram();
    const b = new Histogram();
    const all = new Histogram();
    for (let i = 0; i < 500; i++) {
      a.record(i % 7);
      all.record(i % 7);
      b.record(100 + (i % 13));
      all.record(100 + (i % 13));
    }
    const merged = Histogram.from(a.toData());
    merged.merge(JSON.parse(JSON.stringify(b.toData())));
    expect(merged.summary()).toEqual(all.summary());
  });

  it('answers for the samples recorded since an earlier snapshot of itself', () => {
    const h = new Histogram();
    const later = new Histogram();
    for (let i = 1; i <= 900; i++) h.record(1 + (i % 10));
    const earlier = h.toData();
    for (let i = 1; i <= 100; i++) {
      h.record(200 + i);
      later.record(200 + i);
    }
    const since = h.since(earlier);
    expect(since.count).toBe(100);
    expect(since.summary().avg).toBeCloseTo(later.summary().avg, 6);
    expect(since.percentile(99)).toBeGreaterThan(later.percentile(99) * 0.97);
    expect(since.percentile(99)).toBeLessThan(later.percentile(99) * 1.03);
    expect(since.summary().min).toBeGreaterThan(200 * 0.97);
    expect(Number.isNaN(h.since(h.toData()).percentile(99))).toBe(true);
  });

  it('is empty-safe and clamps negative samples to zero', () => {
    const h = new Histogram();
    expect(Number.isNaN(h.percentile(50))).toBe(true);
    h.record(-3);
    expect(h.summary().max).toBe(0);
    h.reset();
    expect(h.count).toBe(0);
  });
});
