import { randomUUID } from 'node:crypto';
import { BootstrapResponse, DeltaResponse } from '@openagents/sync-protocol';
import { createLogger, createRegistry, type Registry } from '@openagents/sync-server-kit';
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { insertRecord } from '../test/writes';
import { createDeltaApp } from './app';
import { acceptedAgeMs } from './read-sharing';
import { createDeltaReader } from './reader';

const log = createLogger({ name: 'delta-share-test', level: 'silent' });

describe('sharing reads between gateways (Cache-Control: max-age)', () => {
  let db: TestDatabase;
  let token: string;
  const orgId = randomUUID();
  const org = `org:${orgId}`;

  const build = (
    readShareMaxAgeMs?: number,
    more: { readShareCacheBytes?: number } = {},
  ): { app: Hono; registry: Registry } => {
    const registry = createRegistry('delta', { defaultMetrics: false });
    const app = createDeltaApp({
      reader: createDeltaReader({ pool: db.pool }),
      auth: testAuth,
      log,
      registry,
      config: { ...(readShareMaxAgeMs === undefined ? {} : { readShareMaxAgeMs }), ...more },
    });
    return { app, registry };
  };
  const get = (app: Hono, path: string, cacheControl?: string) =>
    app.request(path, {
      headers: {
        authorization: `Bearer ${token}`,
        ...(cacheControl ? { 'cache-control': cacheControl } : {}),
      },
    });
  const reads = async (registry: Registry) => {
    const out: Record<string, number> = {};
    for (const v of (await registry.getSingleMetric('sync_delta_reads_total')!.get()).values) {
      out[`${v.labels.kind}:${v.labels.source}`] = v.value;
    }
    return out;
  };
  const addAgent = () => insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'a' });

  beforeAll(async () => {
    db = await createTestDatabase('delta_share');
    token = await tokenFor([org]);
    for (let i = 0; i < 3; i++) await addAgent();
  });
  afterAll(() => db.drop());

  it('answers concurrent resumes at one cursor with one Postgres read', async () => {
    const { app, registry } = build();
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => get(app, `/sync/delta?scope=${org}&lastSyncId=1`, 'max-age=10')),
    );
    const pages = await Promise.all(responses.map(async (r) => DeltaResponse.parse(await r.json())));
    for (const page of pages) expect(page.events.map((e) => e.id)).toEqual([2, 3]);
    expect(await reads(registry)).toMatchObject({ 'delta:postgres': 1 });
    const shared = (await reads(registry))['delta:in_flight'] ?? 0;
    expect(shared + ((await reads(registry))['delta:cache'] ?? 0)).toBe(9);
    // Shared answers say how old they are; the one read for the request does not.
    expect(responses.filter((r) => r.headers.get('age') !== null)).toHaveLength(9);
    for (const r of responses) expect(r.headers.get('cache-control')).toBe('no-store');
  });

  it('hands a stale page only to a request that accepts one, and that page is a correct prefix', async () => {
    const { app, registry } = build();
    const first = DeltaResponse.parse(
      await (await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=10')).json(),
    );
    const before = first.latestSyncId;
    await addAgent();

    const shared = await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=10');
    expect(shared.headers.get('age')).toBe('0');
    const sharedPage = DeltaResponse.parse(await shared.json());
    expect(sharedPage.events.map((e) => e.id)).toEqual(Array.from({ length: before }, (_, i) => i + 1));

    for (const header of [undefined, 'no-cache', 'max-age=0', 'max-age=10, no-cache']) {
      const fresh = await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, header);
      expect(fresh.headers.get('age')).toBeNull();
      expect(DeltaResponse.parse(await fresh.json()).latestSyncId).toBe(before + 1);
    }
    expect(await reads(registry)).toEqual({ 'delta:postgres': 5, 'delta:cache': 1 });
  });

  it('shares bootstraps the same way, and not at all when turned off', async () => {
    const on = build();
    const both = await Promise.all([
      get(on.app, `/sync/bootstrap?scope=${org}`, 'max-age=1'),
      get(on.app, `/sync/bootstrap?scope=${org}`, 'max-age=1'),
    ]);
    const [a, b] = await Promise.all(both.map(async (r) => BootstrapResponse.parse(await r.json())));
    expect(a).toEqual(b);
    expect((await reads(on.registry))['bootstrap:postgres']).toBe(1);

    const off = build(0);
    await Promise.all([
      get(off.app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=10'),
      get(off.app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=10'),
    ]);
    expect(await reads(off.registry)).toEqual({ 'delta:postgres': 2 });
  });

  it('keeps no more than its byte bound: an answer larger than the cache is read again', async () => {
    const { app, registry } = build(10_000, { readShareCacheBytes: 200 });
    const small = `/sync/delta?scope=${org}&lastSyncId=0&limit=1`;
    const large = `/sync/delta?scope=${org}&lastSyncId=0`;
    const smallBody = await (await get(app, small, 'max-age=10')).text();
    expect(smallBody.length).toBeGreaterThan(200); // one event with its record is already larger
    await get(app, small, 'max-age=10');
    await get(app, large, 'max-age=10');
    await get(app, large, 'max-age=10');
    expect(await reads(registry)).toEqual({ 'delta:postgres': 4 });

    const roomy = build(10_000, { readShareCacheBytes: 1 << 20 });
    await get(roomy.app, large, 'max-age=10');
    const again = await get(roomy.app, large, 'max-age=10');
    expect(await again.text()).toBe(await (await get(roomy.app, large)).text());
    expect(await reads(roomy.registry)).toEqual({ 'delta:postgres': 2, 'delta:cache': 1 });
  });

  it('never shares errors: a refused or failing read is not handed to the next request', async () => {
    const { app, registry } = build();
    const ahead = await get(app, `/sync/delta?scope=${org}&lastSyncId=999`, 'max-age=10');
    expect(ahead.status).toBe(410);
    const again = await get(app, `/sync/delta?scope=${org}&lastSyncId=999`, 'max-age=10');
    expect(again.status).toBe(410);
    expect(await reads(registry)).toEqual({ 'delta:postgres': 2 });
  });

  it('reads fresh for malformed or hostile Cache-Control headers, and caps the age', async () => {
    const { app, registry } = build(1000);
    for (const header of [
      'max-age=abc',
      'max-age=-1',
      'max-age=1e3',
      'max-age=99999999999',
      'max-age',
      '=,=,',
      `max-age=${'9'.repeat(5000)}`,
      'x'.repeat(8000),
    ]) {
      const res = await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, header);
      expect(res.status).toBe(200);
      expect(res.headers.get('age')).toBeNull();
    }
    expect(await reads(registry)).toEqual({ 'delta:postgres': 8 });
    // 3600 s asked, 1 s allowed: an answer up to 1 s old is shared, one older is read again. Only
    // Date is faked (the age is Date.now() arithmetic); Postgres I/O runs on the real timers.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=3600');
      vi.advanceTimersByTime(1000);
      const atCap = await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=3600');
      expect(atCap.headers.get('age')).toBe('1');
      vi.advanceTimersByTime(1);
      const later = await get(app, `/sync/delta?scope=${org}&lastSyncId=0`, 'max-age=3600');
      expect(later.headers.get('age')).toBeNull();
      expect(await reads(registry)).toEqual({ 'delta:postgres': 10, 'delta:cache': 1 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('acceptedAgeMs', () => {
  it.each([
    [undefined, 0],
    ['', 0],
    ['max-age=10', 10_000],
    ['MAX-AGE=2', 2000],
    [' max-age = 3 ', 3000],
    ['public, max-age=5', 5000],
    ['max-age=5, no-cache', 0],
    ['no-store', 0],
    ['max-age=-1', 0],
    ['max-age=1.5', 0],
    ['max-age=1234567890', 0],
  ])('%j accepts %d ms', (header, ms) => {
    expect(acceptedAgeMs(header)).toBe(ms);
  });
});
