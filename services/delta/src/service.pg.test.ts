import { randomUUID } from 'node:crypto';
import { createLogger } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { insertRecord } from '../test/writes';
import { loadDeltaConfig } from './config';
import { createDeltaService, type DeltaService } from './service';

describe('delta service lifecycle', () => {
  let db: TestDatabase;
  let service: DeltaService;

  beforeAll(async () => {
    db = await createTestDatabase('delta_service');
    const config = loadDeltaConfig({
      DATABASE_URL: db.url,
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      PG_POOL_MAX: '2',
    });
    service = createDeltaService({ config, log: createLogger({ name: 'delta', level: 'silent' }) });
    await service.start();
  });
  afterAll(async () => {
    await service.stop();
    await db.drop();
  });

  it('serves reads through fetch, then drains: readiness 503, in-flight requests finish', async () => {
    const orgId = randomUUID();
    await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'a' });
    const token = await tokenFor([`org:${orgId}`]);
    const request = () =>
      service.fetch(
        new Request(`http://delta/sync/bootstrap?scope=org:${orgId}`, {
          headers: { authorization: `Bearer ${token}` },
        }),
      );
    expect((await service.fetch(new Request('http://delta/readyz'))).status).toBe(200);
    const res = await request();
    expect(res.status).toBe(200);
    expect(((await res.json()) as { lastSyncId: number }).lastSyncId).toBe(1);

    const inFlight = request();
    const drained = service.drain();
    expect((await inFlight).status).toBe(200);
    await drained;
    expect(service.inFlight()).toBe(0);
    const ready = await service.fetch(new Request('http://delta/readyz'));
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ draining: true });
    expect(await service.registry.metrics()).toMatch(
      /sync_pg_pool_connections\{state="max",service="delta"\} 2/,
    );
  });
});
