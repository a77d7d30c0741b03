import { ConfigError } from '@openagents/sync-server-kit';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from './config';

const valid = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  DELTA_URL: 'http://delta:8082',
  SYNC_JWT_SECRET: 'a'.repeat(40),
};

describe('loadGatewayConfig', () => {
  it('applies defaults', () => {
    const config = loadGatewayConfig(valid);
    expect(config.PORT).toBe(8080);
    expect(config.MAX_FRAME_BYTES).toBe(65536);
    expect(config.MAX_SUBSCRIPTIONS_PER_CONNECTION).toBe(100);
    expect(config.HEAD_CHECK_INTERVAL_MS).toBe(2000);
    expect(config.DRAIN_WINDOW_MS).toBe(10_000);
    expect(config.WS_COMPRESSION).toBe('off');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes each WS_COMPRESSION setting and rejects others with the list', () => {
    for (const mode of ['off', 'shared', 'dedicated-3kb'] as const) {
      expect(loadGatewayConfig({ ...valid, WS_COMPRESSION: mode }).WS_COMPRESSION).toBe(mode);
    }
    for (const bad of ['on', 'DEDICATED-3KB', '1', 'dedicated']) {
      expect(() => loadGatewayConfig({ ...valid, WS_COMPRESSION: bad })).toThrow(
        /WS_COMPRESSION: must be one of off, shared, dedicated-3kb/,
      );
    }
    // The larger dedicated sizes uWS exports are refused with the reason (uws.test.ts pins it).
    expect(() => loadGatewayConfig({ ...valid, WS_COMPRESSION: 'dedicated-16kb' })).toThrow(
      /dedicated-16kb would be dedicated-3kb/,
    );
  });

  it('names a missing secret', () => {
    const { SYNC_JWT_SECRET: _, ...rest } = valid;
    expect(() => loadGatewayConfig(rest)).toThrow(/SYNC_JWT_SECRET/);
  });

  it('names each bad variable', () => {
    try {
      loadGatewayConfig({ ...valid, DELTA_URL: 'ftp://x', MAX_FRAME_BYTES: 'big', REDIS_URL: '' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const message = (err as Error).message;
      expect(message).toMatch(/DELTA_URL/);
      expect(message).toMatch(/MAX_FRAME_BYTES/);
      expect(message).toMatch(/REDIS_URL/);
    }
  });
});
