import { describe, expect, it } from 'vitest';
import { type DriftSample, deliveryRate, leastSquaresSlope, rssDrift } from './drift';

describe('leastSquaresSlope', () => {
  it('fits a line through noisy points', () => {
    expect(
      leastSquaresSlope([
        [0, 1],
        [1, 3],
        [2, 5],
      ]),
    ).toBeCloseTo(2, 10);
    // A sawtooth (growth, then a collection) around a flat trend.
    const saw = Array.from({ length: 40 }, (_, i) => [i, 100 + (i % 4) * 10] as const);
    expect(Math.abs(leastSquaresSlope(saw))).toBeLessThan(0.5);
  });

  it('is NaN without two distinct x', () => {
    expect(Number.isNaN(leastSquaresSlope([]))).toBe(true);
    expect(Number.isNaN(leastSquaresSlope([[1, 2]]))).toBe(true);
    expect(
      Number.isNaN(
        leastSquaresSlope([
          [1, 2],
          [1, 3],
        ]),
      ),
    ).toBe(true);
  });
});

describe('rssDrift', () => {
  it('reports start, end and bytes per minute, skipping readings without RSS', () => {
    const samples: DriftSample[] = [
      { atMs: 0, rssBytes: 100_000_000, delivered: 0 },
      { atMs: 30_000, rssBytes: undefined, delivered: 10 },
      { atMs: 60_000, rssBytes: 101_000_000, delivered: 20 },
      { atMs: 120_000, rssBytes: 102_000_000, delivered: 40 },
    ];
    expect(rssDrift(samples)).toEqual({
      startBytes: 100_000_000,
      endBytes: 102_000_000,
      slopeBytesPerMinute: 1_000_000,
      samples: 3,
      slopeSamples: 3,
    });
  });

  it('fits the slope from a given time on, leaving out the warm-up', () => {
    const samples: DriftSample[] = [
      { atMs: 0, rssBytes: 300_000_000, delivered: 0 },
      { atMs: 60_000, rssBytes: 200_000_000, delivered: 0 },
      { atMs: 120_000, rssBytes: 200_500_000, delivered: 0 },
      { atMs: 180_000, rssBytes: 201_000_000, delivered: 0 },
    ];
    expect(rssDrift(samples, 60_000)).toMatchObject({
      startBytes: 300_000_000,
      endBytes: 201_000_000,
      slopeBytesPerMinute: 500_000,
      slopeSamples: 3,
    });
    expect(rssDrift(samples)!.slopeBytesPerMinute).toBeLessThan(0);
  });

  it('is undefined when the target exposes no memory', () => {
    expect(rssDrift([{ atMs: 0, rssBytes: undefined, delivered: 0 }])).toBeUndefined();
  });
});

describe('deliveryRate', () => {
  it('divides the events between two readings by the seconds between them', () => {
    expect(
      deliveryRate({ atMs: 1000, rssBytes: 1, delivered: 50 }, { atMs: 3000, rssBytes: 1, delivered: 250 }),
    ).toBe(100);
    expect(
      Number.isNaN(
        deliveryRate({ atMs: 0, rssBytes: 1, delivered: 0 }, { atMs: 0, rssBytes: 1, delivered: 5 }),
      ),
    ).toBe(true);
  });
});
