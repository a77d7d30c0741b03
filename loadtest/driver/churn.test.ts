import { describe, expect, it } from 'vitest';
import { ChurnSchedule } from './churn';

/** A deterministic [0, 1) sequence (a small LCG). */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('ChurnSchedule', () => {
  it('drops the planned share per minute and brings each back after its time away', () => {
    const churn = new ChurnSchedule({ connections: 100, perMinute: 0.6, awayMs: 1000, random: seeded(1) });
    const away = new Map<number, number>();
    let resumed = 0;
    for (let t = 0; t <= 10_000; t += 100) {
      const { drop, resume } = churn.due(t);
      for (const c of resume) {
        const since = t - away.get(c)!;
        expect(since).toBeGreaterThanOrEqual(500);
        expect(since).toBeLessThan(1500 + 100);
        away.delete(c);
        resumed++;
      }
      for (const c of drop) {
        expect(away.has(c)).toBe(false);
        away.set(c, t);
      }
    }
    // 60 % of 100 per minute: 10 in 10 s.
    expect(churn.drops).toBe(10);
    expect(resumed + churn.rest().length).toBe(10);
    expect(churn.rest()).toEqual([]);
  });

  it('never drops a client that is away, and does not owe drops it could not make', () => {
    const churn = new ChurnSchedule({ connections: 3, perMinute: 60, awayMs: 10_000, random: seeded(7) });
    expect(new Set(churn.due(1000).drop).size).toBe(3);
    expect(churn.due(2000)).toEqual({ drop: [], resume: [] });
    expect(churn.rest().sort()).toEqual([0, 1, 2]);
    // 3 per second: the three that could not leave at 2 s are forgiven, not made up for later.
    expect(churn.due(2100).drop).toEqual([]);
    expect(churn.due(2400).drop).toHaveLength(1);
  });

  it('does nothing at a rate of zero', () => {
    const churn = new ChurnSchedule({ connections: 50, perMinute: 0, awayMs: 1000 });
    expect(churn.due(60_000)).toEqual({ drop: [], resume: [] });
    expect(churn.drops).toBe(0);
  });
});
