import { LRUCache } from 'lru-cache';
import { describe, expect, it } from 'vitest';
import { staleSweeper } from './stale-sweeper';

describe('staleSweeper', () => {
  it('drops the expired entries a TTL cache would otherwise keep until its bound', async () => {
    const cache = new LRUCache<string, string>({ max: 100, ttl: 30 });
    const sweep = staleSweeper(cache, 30);
    cache.set('a', 'x');
    cache.set('b', 'y');
    await new Promise((r) => setTimeout(r, 100));
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
