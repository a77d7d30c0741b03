import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { staleSweeper } from './stale-sweeper';

describe('staleSweeper', () => {
  it('drops the expired entries a TTL cache would otherwise keep until its bound', () => {
    // One clock for the cache's TTLs and the sweeper's period, moved by hand: no sleeping.
    let t = 1_000;
    const clock = { now: () => t };
    const cache = new LRUCache<string, string>({ max: 100, ttl: 30, perf: clock });
    const sweep = staleSweeper(cache, 30, clock.now);
    cache.set('a', 'x');
    cache.set('b', 'y');
    t += 100;
    expect(cache.size).toBe(2); // expired, but still held
    sweep();
    expect(cache.size).toBe(0);
    cache.set('c', 'z');
    sweep(); // just swept: not again yet, and 'c' is live anyway
    expect(cache.size).toBe(1);
  });

  it('does not sweep twice within its period', () => {
    let sweeps = 0;
    let t = 0;
    const sweep = staleSweeper({ purgeStale: () => sweeps++ }, 1000, () => t);
    sweep();
    t = 999;
    sweep();
    t = 1000;
    sweep();
    sweep();
    expect(sweeps).toBe(1);
  });
});
