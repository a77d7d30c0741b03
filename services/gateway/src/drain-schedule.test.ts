import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { closesDue, drainOrder, drainTickMs } from './drain-schedule';

describe('drain schedule', () => {
  it('closes one connection at once, the rest evenly over the window, all by its end', () => {
    expect(closesDue(0, 10_000, 4)).toBe(1);
    expect(closesDue(2_499, 10_000, 4)).toBe(1);
    expect(closesDue(2_500, 10_000, 4)).toBe(2);
    expect(closesDue(7_500, 10_000, 4)).toBe(4);
    expect(closesDue(60_000, 10_000, 4)).toBe(4);
  });

  it('is monotonic and bounded by the count', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 120_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        fc.integer({ min: 0, max: 200_000 }),
        (count, window, a, b) => {
          const [early, late] = a <= b ? [a, b] : [b, a];
          const first = closesDue(early, window, count);
          const second = closesDue(late, window, count);
          expect(first).toBeGreaterThanOrEqual(1);
          expect(second).toBeGreaterThanOrEqual(first);
          expect(second).toBeLessThanOrEqual(count);
          if (late >= window) expect(second).toBe(count);
        },
      ),
    );
  });

  it('looks at the schedule as often as closes are due, between 10 and 250 ms', () => {
    expect(drainTickMs(10_000, 100)).toBe(100);
    expect(drainTickMs(10_000, 1)).toBe(250);
    expect(drainTickMs(10_000, 100_000)).toBe(10);
  });

  it('shuffles: a permutation of the connections, decided by the random source', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const order = drainOrder(items, () => 0);
    expect([...order].sort((a, b) => a - b)).toEqual(items);
    expect(order).not.toEqual(items);
    expect(items).toEqual(Array.from({ length: 50 }, (_, i) => i));
    let seed = 1;
    const seeded = () => {
      seed = (seed * 16807) % 2147483647;
      return (seed - 1) / 2147483646;
    };
    const again = (() => {
      seed = 1;
      return drainOrder(items, seeded);
    })();
    seed = 1;
    expect(drainOrder(items, seeded)).toEqual(again);
  });
});
