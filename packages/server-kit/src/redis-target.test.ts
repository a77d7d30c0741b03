import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadEnv, redisCluster, redisUrl } from './config';
import { parseRedisTarget, RedisUrlError, redisRetryDelay } from './redis-target';

describe('parseRedisTarget', () => {
  it('keeps a plain redis:// or rediss:// URL as one server', () => {
    expect(parseRedisTarget('redis://127.0.0.1:6379')).toEqual({
      kind: 'single',
      url: 'redis://127.0.0.1:6379',
    });
    expect(parseRedisTarget('rediss://:pw@cache.example:6380/2')).toEqual({
      kind: 'single',
      url: 'rediss://:pw@cache.example:6380/2',
    });
  });

  it('reads every seed, TLS and credentials of a redis+cluster:// URL', () => {
    expect(parseRedisTarget('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002')).toEqual({
      kind: 'cluster',
      seeds: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
    expect(parseRedisTarget('rediss+cluster://app:p%40ss@cfg.cache.amazonaws.com:6379/')).toEqual({
      kind: 'cluster',
      seeds: [{ host: 'cfg.cache.amazonaws.com', port: 6379 }],
      tls: true,
      username: 'app',
      password: 'p@ss',
    });
  });

  it('takes a redis:// URL as the seed when REDIS_CLUSTER is set', () => {
    expect(parseRedisTarget('rediss://:secret@node-1:6379', true)).toEqual({
      kind: 'cluster',
      seeds: [{ host: 'node-1', port: 6379 }],
      tls: true,
      password: 'secret',
    });
  });

  it.each([
    ['http://x:1', /must be a redis/],
    ['redis+cluster://', /invalid host/],
    ['redis+cluster://a:1,,b:2', /invalid host/],
    ['redis+cluster://a:70000', /invalid port/],
    ['redis+cluster://a:1/3', /only database 0/],
    ['redis+cluster://a:1?tls=true', /only database 0/],
    ['redis+cluster://u:%E0%A4%A@a:1', /badly escaped/],
  ])('refuses %s with a clear error', (url, message) => {
    expect(() => parseRedisTarget(url)).toThrow(RedisUrlError);
    expect(() => parseRedisTarget(url)).toThrow(message);
  });

  it('returns every seed of any well-formed host list, or a RedisUrlError for anything else', () => {
    const host = fc.oneof(
      fc.ipV4(),
      fc.domain(),
      fc.ipV6().map((ip) => `[${ip}]`),
    );
    const seed = fc.record({ host, port: fc.integer({ min: 1, max: 65_535 }) });
    fc.assert(
      fc.property(fc.array(seed, { minLength: 1, maxLength: 6 }), fc.boolean(), (seeds, tls) => {
        const url = `${tls ? 'rediss' : 'redis'}+cluster://${seeds.map((s) => `${s.host}:${s.port}`).join(',')}`;
        const target = parseRedisTarget(url);
        expect(target).toEqual({
          kind: 'cluster',
          tls,
          seeds: seeds.map((s) => ({ host: s.host.replace(/^\[|\]$/g, ''), port: s.port })),
        });
      }),
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        try {
          parseRedisTarget(`redis+cluster://${text}`);
        } catch (err) {
          expect(err).toBeInstanceOf(RedisUrlError);
        }
      }),
    );
  });
});

describe('REDIS_URL and REDIS_CLUSTER', () => {
  const schema = z.object({ REDIS_URL: redisUrl, REDIS_CLUSTER: redisCluster });
  it('accepts cluster URLs and the flag', () => {
    expect(loadEnv(schema, { REDIS_URL: 'redis+cluster://a:1,b:2' })).toEqual({
      REDIS_URL: 'redis+cluster://a:1,b:2',
      REDIS_CLUSTER: false,
    });
    expect(loadEnv(schema, { REDIS_URL: 'redis://a:1', REDIS_CLUSTER: 'true' }).REDIS_CLUSTER).toBe(true);
  });
  it('names the variable and hides the password of a bad URL', () => {
    expect(() => loadEnv(schema, { REDIS_URL: 'redis+cluster://u:hunter2@a:1/5' })).toThrow(
      /REDIS_URL: a cluster has only database 0.*\(got "redis\+cluster:\/\/\*\*\*@a:1\/5"\)/,
    );
    expect(() => loadEnv(schema, { REDIS_URL: 'redis://a:1', REDIS_CLUSTER: 'maybe' })).toThrow(
      /REDIS_CLUSTER/,
    );
  });
});

describe('redisRetryDelay', () => {
  it('draws reconnect delays from a doubling window capped at 2 s, spread by jitter', () => {
    for (let times = 1; times < 40; times++) {
      const bound = Math.min(2000, 100 * 2 ** (times - 1));
      const delays = Array.from({ length: 200 }, () => redisRetryDelay(times));
      for (const d of delays) {
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(bound);
      }
      // Jitter: replicas reconnecting after the same outage do not all pick the same delay.
      if (bound >= 100) expect(new Set(delays).size).toBeGreaterThan(20);
    }
  });
});
