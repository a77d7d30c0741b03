import { randomUUID } from 'node:crypto';
import { createAuth, createLogger, createRegistry, type DeltaSource } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { insertRecord } from '../test/writes';
import { createDeltaApp, type DeltaAppConfig } from './app';
import { loadDeltaConfig } from './config';
import { createReadGate, type ReadGate } from './read-gate';
import { createDeltaReader } from './reader';
import { createDeltaService } from './service';

/** Reads cannot starve writes: per-subject rate, bootstrap concurrency, statement timeout. */
describe('read limits', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('delta_limits');
  });
  afterAll(() => db.drop());

  const appWith = (
    config: DeltaAppConfig,
    reader: DeltaSource = createDeltaReader({ pool: db.pool }),
    bootstrapGate?: ReadGate,
  ) =>
    createDeltaApp({
      ...(bootstrapGate ? { bootstrapGate } : {}),
      reader,
      auth: createAuth({ secret: TEST_JWT_SECRET, acceptServiceTokens: true }),
      log: createLogger({ name: 'delta', level: 'silent' }),
      registry: createRegistry('delta', { defaultMetrics: false }),
      config,
    });

  it('limits reads per token subject with 429 rate_limited and Retry-After; gateways are exempt', async () => {
    // One token per 100 s after the burst: nothing refills during the test.
    const app = appWith({ readRatePerSecond: 0.01, readBurst: 3 });
    const scope = `org:${randomUUID()}`;
    const get = async (sub: string, path: string) =>
      app.request(path, { headers: { authorization: `Bearer ${await tokenFor([scope], sub)}` } });
    const paths = [
      `/sync/bootstrap?scope=${scope}`,
      `/sync/delta?scope=${scope}&lastSyncId=0`,
      `/sync/heads?scope=${scope}`,
    ];
    for (const path of paths) expect((await get('alice', path)).status).toBe(200);
    for (const path of paths) {
      const refused = await get('alice', path);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      const body = (await refused.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('rate_limited');
      expect(typeof body.error.message).toBe('string');
    }
    // Another subject has its own bucket; a gateway's service token reads for everyone. A client
    // token merely named like one is limited as any other.
    expect((await get('bob', paths[0]!)).status).toBe(200);
    const service = await createAuth({ secret: TEST_JWT_SECRET }).signService('service:gateway');
    for (let i = 0; i < 10; i++) {
      const res = await app.request(paths[0]!, { headers: { authorization: `Bearer ${service}` } });
      expect(res.status).toBe(200);
    }
    for (let i = 0; i < 3; i++) expect((await get('service:gateway', paths[0]!)).status).toBe(200);
    expect((await get('service:gateway', paths[0]!)).status).toBe(429);
  });

  it('runs at most maxConcurrentBootstraps bootstrap reads at once, lines up 32× more, then 503', async () => {
    const inner = createDeltaReader({ pool: db.pool });
    let running = 0;
    let most = 0;
    const held: (() => void)[] = [];
    const reader: DeltaSource = {
      ...inner,
      async bootstrap(scope, options) {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((resolve) => held.push(resolve));
        try {
          return await inner.bootstrap(scope, options);
        } finally {
          running--;
        }
      },
    };
    // The app's own default gate for maxConcurrentBootstraps: 2, passed in so the test can see
    // its line fill: requests authenticate asynchronously, so the 67th must be sent only once the
    // first 66 are inside the gate, or it may overtake one of them.
    const gate = createReadGate({ concurrency: 2, queue: 2 * 32 });
    const app = appWith({ maxConcurrentBootstraps: 2 }, reader, gate);
    const scope = `org:${randomUUID()}`;
    const token = await tokenFor([scope]);
    const get = () =>
      app.request(`/sync/bootstrap?scope=${scope}`, { headers: { authorization: `Bearer ${token}` } });
    const admitted = Array.from({ length: 2 + 64 }, get);
    while (gate.active + gate.waiting < 66) await new Promise((r) => setImmediate(r));
    const refused = await get();
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('unavailable');
    // Release reads as they arrive until all 66 are answered.
    let answered = 0;
    const all = Promise.all(admitted).finally(() => {
      answered = admitted.length;
    });
    while (answered === 0) {
      held.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    for (const res of await all) expect(res.status).toBe(200);
    expect(most).toBe(2);
  });

  it('cancels a read stuck longer than READ_STATEMENT_TIMEOUT_MS instead of holding its connection', async () => {
    const service = createDeltaService({
      config: loadDeltaConfig({
        DATABASE_URL: db.url,
        SYNC_JWT_SECRET: TEST_JWT_SECRET,
        READ_STATEMENT_TIMEOUT_MS: '300',
        MIGRATE_ON_START: 'false',
      }),
      log: createLogger({ name: 'delta', level: 'silent' }),
    });
    const orgId = randomUUID();
    await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'a' });
    const token = await tokenFor([`org:${orgId}`]);
    // Another session holds the agents table: a read would wait for it forever without a timeout.
    const blocker = await db.pool.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE agents IN ACCESS EXCLUSIVE MODE');
      const res = await service.fetch(
        new Request(`http://delta/sync/bootstrap?scope=org:${orgId}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      );
      expect(res.status).toBeGreaterThanOrEqual(500);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
      await service.stop();
    }
  });
});
