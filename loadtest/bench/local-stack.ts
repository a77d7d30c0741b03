import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '../../test/support/pg';
import { freePort } from '../../test/support/ports';
import { type RedisServer, startRedisServer } from '../../test/support/redis';
import { type ServiceProcess, startService } from '../../test/support/stack';

/** The multi-node stack on this machine: processes on 127.0.0.1, a fresh database, a private Redis. */
export interface LocalStack {
  apiUrls: string[];
  gatewayUrls: string[];
  deltaUrl: string;
  secret: string;
  redisUrl: string;
  channelPrefix: string;
  services: ServiceProcess[];
  gateways: ServiceProcess[];
  db: TestDatabase;
  redis: RedisServer;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  apiWorkers: number;
  gateways: number;
  /** Extra environment for every service (e.g. LOG_LEVEL). */
  env?: Record<string, string>;
  /** Extra environment for the api workers only (e.g. STREAM_COALESCE_MS). */
  apiEnv?: Record<string, string>;
  /** Extra environment for the gateways only (e.g. WS_COMPRESSION). */
  gatewayEnv?: Record<string, string>;
}

/**
 * Starts delta, then the api workers and gateways, each as its own process via
 * test/support/stack.ts, and waits until all are ready. Write rate limits are off: the load
 * driver is one client writing as fast as the stack allows.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const secret = randomBytes(32).toString('hex');
  const channelPrefix = `lt${randomBytes(3).toString('hex')}:`;
  const db = await createTestDatabase('loadtest');
  const redis = await startRedisServer();
  const services: ServiceProcess[] = [];
  const common = { SYNC_JWT_SECRET: secret, LOG_LEVEL: 'warn', ...options.env };
  try {
    const delta = await startService('delta', {
      port: await freePort(),
      env: { ...common, DATABASE_URL: db.url, MIGRATE_ON_START: 'false', PG_POOL_MAX: '10' },
    });
    services.push(delta);
    const apis = await Promise.all(
      Array.from({ length: options.apiWorkers }, async () =>
        startService('api', {
          port: await freePort(),
          env: {
            ...common,
            DATABASE_URL: db.url,
            REDIS_URL: redis.url,
            REDIS_CHANNEL_PREFIX: channelPrefix,
            MIGRATE_ON_START: 'false',
            RATE_LIMIT_PER_SECOND: '0',
            PG_POOL_MAX: '10',
            ...options.apiEnv,
          },
        }),
      ),
    );
    services.push(...apis);
    const gateways = await Promise.all(
      Array.from({ length: options.gateways }, async () =>
        startService('gateway', {
          port: await freePort(),
          env: {
            ...common,
            REDIS_URL: redis.url,
            DELTA_URL: delta.url,
            REDIS_CHANNEL_PREFIX: channelPrefix,
            ...options.gatewayEnv,
          },
        }),
      ),
    );
    services.push(...gateways);
    return {
      apiUrls: apis.map((s) => s.url),
      gatewayUrls: gateways.map((s) => s.url),
      deltaUrl: delta.url,
      secret,
      redisUrl: redis.url,
      channelPrefix,
      services,
      gateways,
      db,
      redis,
      async stop() {
        await Promise.all(services.map((s) => s.kill('SIGKILL')));
        await redis.stop();
        await db.drop();
      },
    };
  } catch (err) {
    await Promise.all(services.map((s) => s.kill('SIGKILL')));
    await redis.stop();
    await db.drop();
    throw err;
  }
}
