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

type Pipeline = ReturnType<typeof createCommitPipeline>;

/** A pipeline over the test database; its clock and timer are the test's fake ones. */
function fakeClockPipeline(options: CommitPipelineOptions): Pipeline {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  const metrics = createApiMetrics(new Registry());
  return createCommitPipeline(
    { pool: h.db.pool, bus: h.bus, log: createLogger({ name: 'test', level: 'silent' }), metrics },
    options,
  );
}

/** Runs `body` while a transaction of `pipeline` waits on a head lock held here; then lets it commit. */
async function withHeldTransaction(pipeline: Pipeline, body: () => Promise<void>): Promise<void> {
  const held = await h.createAgent();
  await h.createMessage(held.id);
  const locker: PoolClient = await h.db.pool.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${held.id}`]);
    const first = pipeline.commit(create(held.id));
    while ((await waitingOnLock()) === 0) await settle();
    try {
      await body();
    } finally {
      await locker.query('COMMIT');
    }
    expect((await first)[0]!.body.syncId).toBe(2);
  } finally {
    locker.release();
  }
}

/** Commits a write to `agentId` beside the held transaction; resolves once it is out of the queue. */
async function expectWaitsUntilLate(pipeline: Pipeline, agentId: string, lateMs: number): Promise<void> {
  const second = pipeline.commit(create(agentId));
  let answered = false;
  void second.then(() => {
    answered = true;
  });
  // Round trips to Postgres go by, and the pipeline's clock up to just before late.
  vi.advanceTimersByTime(lateMs - 1);
  for (let i = 0; i < 5; i++) await settle();
  expect(pipeline.queued()).toBe(1);
  expect(answered).toBe(false);
  // Late: the waiting write starts its own transaction and commits while the first is held.
  vi.advanceTimersByTime(1);
  expect(pipeline.queued()).toBe(0);
  expect((await second)[0]!.body).toMatchObject({ scope: `agent:${agentId}`, syncId: 1 });
}

describe('a second transaction beside one in flight', () => {
  it('starts only once the first is late: until then the write waits for the next group', async () => {
    const other = await h.createAgent();
    const pipeline = fakeClockPipeline(COMMIT_PIPELINE_DEFAULTS);
    await withHeldTransaction(pipeline, () =>
      expectWaitsUntilLate(pipeline, other.id, COMMIT_PIPELINE_DEFAULTS.overlapMinMs),
    );
  });

  it('is late after overlapMaxMs at most, however long the commits before took', async () => {
    const another = await h.createAgent();
    const options = { ...COMMIT_PIPELINE_DEFAULTS, overlapMaxMs: 50 };
    const pipeline = fakeClockPipeline(options);
    // A first transaction that took 2 s: the typical commit is now that long.
    await withHeldTransaction(pipeline, async () => {
      vi.advanceTimersByTime(2000);
    });
    await withHeldTransaction(pipeline, () =>
      expectWaitsUntilLate(pipeline, another.id, options.overlapMaxMs),
    );
  });

  it('starts at once when a full group waits', async () => {
    const others = await Promise.all([h.createAgent(), h.createAgent(), h.createAgent()]);
    const pipeline = fakeClockPipeline({ ...COMMIT_PIPELINE_DEFAULTS, maxGroup: 3 });
    await withHeldTransaction(pipeline, async () => {
      const group = others.map((a) => pipeline.commit(create(a.id)));
      expect(pipeline.queued()).toBe(0);
      const answers = await Promise.all(group);
      expect(answers.map((a) => a[0]!.body.scope)).toEqual(others.map((a) => `agent:${a.id}`));
    });
  });
});
