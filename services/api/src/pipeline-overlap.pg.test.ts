import { createLogger, type PoolClient } from '@openagents/sync-server-kit';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import { COMMIT_PIPELINE_DEFAULTS, type CommitPipelineOptions, createCommitPipeline } from './group-commit';
import { createApiMetrics } from './metrics';
import { planCreate } from './mutation-plan';

/**
 * When the pipeline starts a second transaction beside one in flight: only once the first is late
 * (in flight `overlapAfter` times the typical commit, at least `overlapMinMs`), or when a full group
 * waits. Until then the writes that arrive wait and go together into the next group. The first
 * transaction is held in Postgres on its scope's head row, locked from here; the pipeline's clock
 * and timer are faked, so "late" happens exactly when the test advances the clock.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_pipeline_overlap' });
});
afterAll(async () => h?.close());
afterEach(() => {
  vi.useRealTimers();
});

const principal = { sub: 'overlap-test', scopes: ['*'], exp: Math.floor(Date.now() / 1000) + 600 };
const create = (agentId: string) => ({
  principal,
  mutations: [
    planCreate(
      'Message',
      { agent_id: agentId, role: 'user', content: 'x' },
      { key: null, method: 'POST', path: '/' },
    ),
  ],
});

/** Lets I/O run without a timer (the test's timers are fake): one round trip to Postgres. */
const settle = () => h.db.pool.query('SELECT 1');

async function waitingOnLock(): Promise<number> {
  const { rows } = await h.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

/** A pipeline whose first transaction waits on a lock held here while `body` runs. */
async function withHeldTransaction(
  options: CommitPipelineOptions,
  body: (pipeline: ReturnType<typeof createCommitPipeline>) => Promise<void>,
): Promise<void> {
  const held = await h.createAgent();
  await h.createMessage(held.id);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const metrics = createApiMetrics(new Registry());
  const pipeline = createCommitPipeline(
    { pool: h.db.pool, bus: h.bus, log: createLogger({ name: 'test', level: 'silent' }), metrics },
    options,
  );
  const locker: PoolClient = await h.db.pool.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${held.id}`]);
    const first = pipeline.commit(create(held.id));
    while ((await waitingOnLock()) === 0) await settle();
    await body(pipeline);
    await locker.query('COMMIT');
    expect((await first)[0]!.body.syncId).toBe(2);
  } finally {
    locker.release();
  }
}

describe('a second transaction beside one in flight', () => {
  it('starts only once the first is late: until then the write waits for the next group', async () => {
    const other = await h.createAgent();
    await withHeldTransaction(COMMIT_PIPELINE_DEFAULTS, async (pipeline) => {
      const second = pipeline.commit(create(other.id));
      let answered = false;
      void second.then(() => {
        answered = true;
      });
      // Round trips to Postgres go by; the first is not late on the pipeline's clock yet.
      for (let i = 0; i < 5; i++) await settle();
      expect(pipeline.queued()).toBe(1);
      expect(answered).toBe(false);
      // Late: the waiting write starts its own transaction and commits while the first is held.
      vi.advanceTimersByTime(COMMIT_PIPELINE_DEFAULTS.overlapMinMs);
      expect(pipeline.queued()).toBe(0);
      expect((await second)[0]!.body).toMatchObject({ scope: `agent:${other.id}`, syncId: 1 });
    });
  });

  it('starts at once when a full group waits', async () => {
    const others = await Promise.all([h.createAgent(), h.createAgent(), h.createAgent()]);
    await withHeldTransaction({ ...COMMIT_PIPELINE_DEFAULTS, maxGroup: 3 }, async (pipeline) => {
      const group = others.map((a) => pipeline.commit(create(a.id)));
      expect(pipeline.queued()).toBe(0);
      const answers = await Promise.all(group);
      expect(answers.map((a) => a[0]!.body.scope)).toEqual(others.map((a) => `agent:${a.id}`));
    });
  });
});
