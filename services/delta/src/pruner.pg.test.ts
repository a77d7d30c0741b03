import { randomUUID } from 'node:crypto';
import { createLogger, createRegistry, readHead } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { insertRecord, updateRecord } from '../test/writes';
import { deltaMetricsFor } from './metrics';
import { createPruner, type PrunerOptions } from './pruner';
import { PRUNE_LOCK_KEY } from './queries';
import { createDeltaReader } from './reader';

const log = createLogger({ name: 'pruner-test', level: 'silent' });
const DAY = 86_400_000;

describe('pruner', () => {
  let db: TestDatabase;
  let options: PrunerOptions;
  const registry = createRegistry('delta', { defaultMetrics: false });

  /** A scope with `n` events, the first `old` of them dated 40 days back. */
  const scopeWithOldEvents = async (n: number, old: number) => {
    const orgId = randomUUID();
    const a = await insertRecord(db.pool, 'Agent', { org_id: orgId, name: 'a' });
    for (let i = 1; i < n; i++) await updateRecord(db.pool, 'Agent', String(a.record.id), { name: `n${i}` });
    const scope = `org:${orgId}`;
    await db.pool.query(
      `UPDATE sync_events SET created_at = now() - interval '40 days' WHERE scope = $1 AND id <= $2`,
      [scope, old],
    );
    return scope;
  };

  const addIdempotencyKey = (key: string, hoursAgo: number) =>
    db.pool.query(
      `INSERT INTO idempotency_keys (principal, key, request_hash, response, created_at)
       VALUES ('user-1', $1, 'h', '{}'::jsonb, now() - make_interval(hours => $2))`,
      [key, hoursAgo],
    );

  beforeAll(async () => {
    db = await createTestDatabase('delta_pruner');
    options = {
      pool: db.pool,
      retentionDays: 30,
      idempotencyRetentionHours: 24,
      intervalMs: 50,
      log,
      metrics: deltaMetricsFor(registry),
    };
  });
  afterAll(() => db.drop());

  it('deletes expired prefixes of each log and expired idempotency keys, keeping the rest', async () => {
    const a = await scopeWithOldEvents(5, 3);
    const b = await scopeWithOldEvents(4, 4);
    const fresh = await scopeWithOldEvents(3, 0);
    await addIdempotencyKey('old', 30);
    await addIdempotencyKey('new', 1);

    const run = await createPruner(options).runOnce();
    expect(run).toMatchObject({ outcome: 'pruned', events: 7, idempotencyKeys: 1 });

    expect(await readHead(db.pool, a)).toEqual({ lastId: 5, prunedThrough: 3 });
    expect(await readHead(db.pool, b)).toEqual({ lastId: 4, prunedThrough: 4 });
    expect(await readHead(db.pool, fresh)).toEqual({ lastId: 3, prunedThrough: 0 });
    const keys = await db.pool.query('SELECT key FROM idempotency_keys ORDER BY key');
    expect(keys.rows.map((r) => r.key)).toEqual(['new']);

    const reader = createDeltaReader({ pool: db.pool });
    await expect(reader.delta(a, 2)).rejects.toMatchObject({ code: 'reset_required' });
    expect((await reader.delta(a, 3)).events.map((e) => e.id)).toEqual([4, 5]);
    expect(await reader.delta(b, 4)).toMatchObject({ events: [], latestSyncId: 4, hasMore: false });
    // The state is intact after pruning: a bootstrap is still served at the head.
    expect((await reader.bootstrap(b)).lastSyncId).toBe(4);

    expect(await createPruner(options).runOnce()).toMatchObject({ outcome: 'pruned', events: 0 });
    const text = await registry.metrics();
    expect(text).toMatch(/sync_events_pruned_total\{service="delta"\} 7/);
    expect(text).toMatch(/sync_prune_duration_seconds_count\{service="delta"\} 2/);
  });

  it('respects the retention setting and an injected clock', async () => {
    const scope = await scopeWithOldEvents(2, 2);
    expect(await createPruner({ ...options, retentionDays: 60 }).runOnce()).toMatchObject({ events: 0 });
    const later = () => Date.now() + 100 * DAY;
    const run = await createPruner({ ...options, retentionDays: 60, now: later }).runOnce();
    expect(run).toMatchObject({ outcome: 'pruned' });
    expect((await readHead(db.pool, scope)).prunedThrough).toBe(2);
  });

  it('lets only one replica prune at a time: a held lock makes the run a no-op', async () => {
    const scope = await scopeWithOldEvents(3, 2);
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [PRUNE_LOCK_KEY]);
      expect(await createPruner(options).runOnce()).toEqual({ outcome: 'skipped' });
      expect((await readHead(db.pool, scope)).prunedThrough).toBe(0);
      // Two replicas racing: at most one of them prunes; the lock is released after the run.
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [PRUNE_LOCK_KEY]);
      const runs = await Promise.all([createPruner(options).runOnce(), createPruner(options).runOnce()]);
      const pruned = runs.filter((r) => r.outcome === 'pruned');
      expect(pruned.length).toBeGreaterThanOrEqual(1);
      expect(pruned.reduce((sum, r) => sum + (r.outcome === 'pruned' ? r.events : 0), 0)).toBe(2);
      const locked = await holder.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [PRUNE_LOCK_KEY]);
      expect(locked.rows[0].ok).toBe(true);
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [PRUNE_LOCK_KEY]);
    } finally {
      holder.release();
    }
    const skipped = /sync_prune_runs_total\{result="skipped",service="delta"\} (\d+)/.exec(
      await registry.metrics(),
    );
    expect(Number(skipped?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('runs on its interval once started, and stops cleanly', async () => {
    const scope = await scopeWithOldEvents(3, 1);
    // The pruner's schedule on a fake clock (vi.waitFor moves it); Postgres runs on real I/O.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    // Every run starts by taking a connection: counting them counts the runs begun.
    let runs = 0;
    const pool = {
      connect: () => {
        runs++;
        return db.pool.connect();
      },
    } as unknown as PrunerOptions['pool'];
    const pruner = createPruner({ ...options, pool });
    try {
      pruner.start();
      pruner.start();
      // The first run starts at once…
      await vi.waitFor(async () => expect((await readHead(db.pool, scope)).prunedThrough).toBe(1));
      // …and another one an interval after each run.
      const next = await scopeWithOldEvents(2, 1);
      await vi.waitFor(async () => expect((await readHead(db.pool, next)).prunedThrough).toBe(1));
      // Let the run in flight end (or run once more): the next tick then waits on the clock, and
      // stop must cancel it. After stop, nothing runs any more, however long the clock goes on.
      await pruner.runOnce();
      await pruner.stop();
      const stoppedAt = runs;
      const later = await scopeWithOldEvents(2, 1);
      await vi.advanceTimersByTimeAsync(600_000);
      expect(runs).toBe(stoppedAt);
      expect((await readHead(db.pool, later)).prunedThrough).toBe(0);
    } finally {
      await pruner.stop();
      vi.useRealTimers();
    }
  });
});
