import { ApiConfigSchema, loadApiConfig } from '@openagents/sync-api-service';
import { DeltaConfigSchema } from '@openagents/sync-delta-service';
import { GatewayEnv, loadGatewayConfig } from '@openagents/sync-gateway-service';
import { describe, expect, it } from 'vitest';
import { loadStandaloneConfig, StandaloneEnv } from './config';

describe('standalone configuration table', () => {
  it("reads every variable of the api, delta and gateway tables (but the gateway's DELTA_URL)", () => {
    const own = new Set(Object.keys(StandaloneEnv.shape));
    const services = [ApiConfigSchema, DeltaConfigSchema, GatewayEnv].flatMap((t) => Object.keys(t.shape));
    expect(services.filter((name) => !own.has(name))).toEqual(['DELTA_URL']);
  });

  it('gives a shared variable one limit everywhere (REDIS_CHANNEL_PREFIX at most 100 characters)', () => {
    const required = {
      DATABASE_URL: 'postgres://u@h/db',
      REDIS_URL: 'redis://127.0.0.1:6379',
      DELTA_URL: 'http://delta:8082',
      SYNC_JWT_SECRET: 's'.repeat(32),
    };
    const loaders = [loadApiConfig, loadGatewayConfig, loadStandaloneConfig];
    for (const load of loaders) {
      expect(load({ ...required, REDIS_CHANNEL_PREFIX: 'p'.repeat(100) }).REDIS_CHANNEL_PREFIX).toHaveLength(
        100,
      );
      expect(() => load({ ...required, REDIS_CHANNEL_PREFIX: 'p'.repeat(101) })).toThrow(
        /REDIS_CHANNEL_PREFIX/,
      );
    }
  });

  it('uses the defaults a single process wants, from variables, not constants', () => {
    const config = loadStandaloneConfig({});
    expect(config).toMatchObject({
      PORT: 8787,
      PG_POOL_MAX: 10,
      MAX_CONCURRENT_BOOTSTRAPS: 2,
      RETENTION_DAYS: 30,
      IDEMPOTENCY_RETENTION_HOURS: 24,
      SERVE_CONSOLE: true,
    });
    // One pool, sized by the variable every service reads: no second, standalone-only pool size.
    expect(config).not.toHaveProperty('READ_PG_POOL_MAX');
    const tuned = loadStandaloneConfig({ RETENTION_DAYS: '7', PG_POOL_MAX: '2', SERVE_CONSOLE: 'no' });
    expect(tuned).toMatchObject({ RETENTION_DAYS: 7, PG_POOL_MAX: 2, SERVE_CONSOLE: false });
    expect(() => loadStandaloneConfig({ PG_POOL_MAX: '0' })).toThrow(/PG_POOL_MAX/);
  });
});
