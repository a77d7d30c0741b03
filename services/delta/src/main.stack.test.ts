import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { startService } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';
import { insertRecord } from '../test/writes';

describe('delta main', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('delta_main');
  });
  afterAll(() => db.drop());

  it('refuses to start without SYNC_JWT_SECRET, naming it', async () => {
    const proc = await startService('delta', {
      port: await freePort(),
      env: { DATABASE_URL: db.url, SYNC_JWT_SECRET: '' },
      waitReady: false,
    });
    expect(await proc.exited).toBe(1);
    expect(proc.output.join('\n')).toMatch(/refusing to start[\s\S]*SYNC_JWT_SECRET/);
  });

  it('serves reads on its port, answers long heads lists, and exits 0 on SIGTERM', async () => {
    const orgId = randomUUID();
    await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'a' });
    const delta = await startService('delta', {
      port: await freePort(),
      env: { DATABASE_URL: db.url, SYNC_JWT_SECRET: TEST_JWT_SECRET },
    });
    try {
      const token = await tokenFor(['*']);
      const headers = { authorization: `Bearer ${token}` };
      const boot = await fetch(`${delta.url}/sync/bootstrap?scope=org:${orgId}`, { headers });
      expect(boot.status).toBe(200);
      expect(((await boot.json()) as { lastSyncId: number }).lastSyncId).toBe(1);

      // 1000 uuid scopes in one URL is ~47 KB: more than Node's default header limit.
      const scopes = [`org:${orgId}`, ...Array.from({ length: 999 }, () => `agent:${randomUUID()}`)];
      const heads = await fetch(`${delta.url}/sync/heads?${scopes.map((s) => `scope=${s}`).join('&')}`, {
        headers,
      });
      expect(heads.status).toBe(200);
      const body = (await heads.json()) as { heads: Record<string, number> };
      expect(body.heads[`org:${orgId}`]).toBe(1);
      expect(Object.keys(body.heads)).toHaveLength(1000);

      const metrics = await (await fetch(`${delta.url}/metrics`)).text();
      expect(metrics).toContain('sync_bootstrap_requests_total');
      expect(delta.output.join('\n')).not.toContain(token);
    } finally {
      expect(await delta.kill('SIGTERM')).toBe(0);
    }
  });
});
