import { ConfigError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { DEFAULT_BODY_LIMIT_BYTES, loadApiConfig } from './config';

const required = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/sync',
  REDIS_URL: 'redis://127.0.0.1:6379',
  SYNC_JWT_SECRET: 's'.repeat(32),
};

function problems(env: Record<string, string | undefined>): string {
  try {
    loadApiConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadApiConfig', () => {
  it('applies the documented defaults and freezes the result', () => {
    const config = loadApiConfig(required);
    expect(config).toMatchObject({
      PORT: 8081,
      LOG_LEVEL: 'info',
      PG_POOL_MAX: 20,
      BODY_LIMIT_BYTES: DEFAULT_BODY_LIMIT_BYTES,
      RATE_LIMIT_PER_SECOND: 200,
      RATE_LIMIT_BURST: 400,
      MIGRATE_ON_START: true,
      WRITE_GROUP_MAX: 32,
      WRITE_ANSWER_AFTER: 'publish',
      STREAM_COALESCE_MS: 0,
      STREAM_COALESCE_PIECES: 0,
      STREAM_TRACE_EVERY: 8,
    });
    expect(config.REDIS_CHANNEL_PREFIX).toBeUndefined();
    expect(config.STREAM_TRACE_FILE).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('refuses to start without SYNC_JWT_SECRET, naming it', () => {
    expect(problems({ ...required, SYNC_JWT_SECRET: undefined })).toMatch(/SYNC_JWT_SECRET/);
    expect(problems({ ...required, SYNC_JWT_SECRET: '' })).toMatch(/SYNC_JWT_SECRET/);
    expect(problems({ ...required, SYNC_JWT_SECRET: 'short' })).toMatch(
      /SYNC_JWT_SECRET: must be at least 32/,
    );
  });

  it('requires DATABASE_URL and REDIS_URL', () => {
    const message = problems({ SYNC_JWT_SECRET: required.SYNC_JWT_SECRET });
    expect(message).toMatch(/DATABASE_URL/);
    expect(message).toMatch(/REDIS_URL/);
    expect(problems({ ...required, DATABASE_URL: 'mysql://x' })).toMatch(/DATABASE_URL/);
  });

  it('names every bad value', () => {
    const message = problems({
      ...required,
      PORT: 'eighty',
      PG_POOL_MAX: '0',
      BODY_LIMIT_BYTES: '-1',
      RATE_LIMIT_PER_SECOND: 'x',
      MIGRATE_ON_START: 'maybe',
      LOG_LEVEL: 'loud',
      STREAM_TRACE_EVERY: '0',
      STREAM_COALESCE_MS: '1001',
    });
    for (const name of [
      'STREAM_TRACE_EVERY',
      'STREAM_COALESCE_MS',
      'PORT',
      'PG_POOL_MAX',
      'BODY_LIMIT_BYTES',
      'RATE_LIMIT_PER_SECOND',
      'MIGRATE_ON_START',
      'LOG_LEVEL',
    ]) {
      expect(message).toContain(name);
    }
  });

  it('parses overrides; empty strings count as unset', () => {
    const config = loadApiConfig({
      ...required,
      PORT: '9000',
      MIGRATE_ON_START: 'false',
      RATE_LIMIT_PER_SECOND: '0',
      BODY_LIMIT_BYTES: '',
      REDIS_CHANNEL_PREFIX: 'prod:',
    });
    expect(config).toMatchObject({
      PORT: 9000,
      MIGRATE_ON_START: false,
      RATE_LIMIT_PER_SECOND: 0,
      BODY_LIMIT_BYTES: DEFAULT_BODY_LIMIT_BYTES,
      REDIS_CHANNEL_PREFIX: 'prod:',
    });
  });
});
