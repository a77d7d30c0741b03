import { ConfigError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { loadDeltaConfig } from './config';

const required = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sync',
  SYNC_JWT_SECRET: 'x'.repeat(32),
};

const problems = (env: Record<string, string | undefined>): string => {
  try {
    loadDeltaConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
};

describe('loadDeltaConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadDeltaConfig(required)).toEqual({
      ...required,
      PORT: 8082,
      RETENTION_DAYS: 30,
      IDEMPOTENCY_RETENTION_HOURS: 24,
      PRUNE_INTERVAL_SECONDS: 300,
      PG_POOL_MAX: 10,
      READ_STATEMENT_TIMEOUT_MS: 15_000,
      READ_RATE_PER_SECOND: 20,
      READ_BURST: 100,
      MAX_CONCURRENT_BOOTSTRAPS: 4,
      READ_SHARE_MAX_AGE_SECONDS: 10,
      READ_SHARE_CACHE_MIB: 64,
      BOOTSTRAP_PAGE_BYTES: 1024 * 1024,
      DELTA_PAGE_BYTES: 1024 * 1024,
      LOG_LEVEL: 'info',
      MIGRATE_ON_START: true,
      ALLOWED_ORIGINS: [],
    });
  });

  it('reads every variable and treats empty strings as unset', () => {
    const config = loadDeltaConfig({
      ...required,
      PORT: '9000',
      RETENTION_DAYS: '7',
      IDEMPOTENCY_RETENTION_HOURS: '48',
      PRUNE_INTERVAL_SECONDS: '60',
      PG_POOL_MAX: '4',
      LOG_LEVEL: 'warn',
      MIGRATE_ON_START: 'false',
    });
    expect(config).toMatchObject({ PORT: 9000, RETENTION_DAYS: 7, PG_POOL_MAX: 4, MIGRATE_ON_START: false });
    expect(loadDeltaConfig({ ...required, PORT: '', RETENTION_DAYS: '  ' }).PORT).toBe(8082);
    expect(Object.isFrozen(loadDeltaConfig(required))).toBe(true);
  });

  it('refuses to start without the JWT secret, naming it', () => {
    expect(problems({ DATABASE_URL: required.DATABASE_URL })).toMatch(/SYNC_JWT_SECRET/);
    expect(problems({ ...required, SYNC_JWT_SECRET: 'short' })).toMatch(/SYNC_JWT_SECRET: .*32/);
    expect(problems({ SYNC_JWT_SECRET: required.SYNC_JWT_SECRET })).toMatch(/DATABASE_URL/);
  });

  it('names each bad value', () => {
    const message = problems({
      ...required,
      PORT: '70000',
      RETENTION_DAYS: '0',
      IDEMPOTENCY_RETENTION_HOURS: '1.5',
      PRUNE_INTERVAL_SECONDS: 'soon',
      PG_POOL_MAX: '-1',
      READ_SHARE_MAX_AGE_SECONDS: '-5',
      READ_SHARE_CACHE_MIB: '0',
      LOG_LEVEL: 'loud',
      MIGRATE_ON_START: 'maybe',
      DATABASE_URL: 'mysql://x',
    });
    for (const name of [
      'PORT',
      'RETENTION_DAYS',
      'IDEMPOTENCY_RETENTION_HOURS',
      'PRUNE_INTERVAL_SECONDS',
      'PG_POOL_MAX',
      'READ_SHARE_MAX_AGE_SECONDS',
      'READ_SHARE_CACHE_MIB',
      'LOG_LEVEL',
      'MIGRATE_ON_START',
      'DATABASE_URL',
    ]) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain(required.SYNC_JWT_SECRET);
  });
});
