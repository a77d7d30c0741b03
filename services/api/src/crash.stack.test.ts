import { randomUUID } from 'node:crypto';
import type { PoolClient } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { freePort } from '../../../test/support/ports';
import { TEST_REDIS_URL, uniqueChannelPrefix } from '../../../test/support/redis';
import { readMetric, type ServiceProcess, startService, waitUntil } from '../../../test/support/stack';
import { TEST_JWT_SECRET, tokenFor } from '../../../test/support/tokens';

/**
 * SIGKILL of a worker while a group is committing. A group is made to stop half-way: an outside
 * transaction row-locks one agent, so the group's member writing a message to that agent waits in
 * its foreign-key check after the members before it have already written their rows. The group is
 * formed deterministically: two writes to other row-locked agents first take the worker's two
 * transaction slots (the pipeline's depth) and wait, the writes of the group are sent and queue
 * behind them, then those two are let through, so everything queued becomes one transaction —
 * checked before the kill from the database (one sync_commit running, waiting on the lock) and the
 * worker (nothing queued, only the two answered), and after it from the events' transaction id.
 * The worker is killed there, then the lock is released, so Postgres either commits the orphaned group or
 * rolls it back. Whatever it chose, every acknowledged write must be in the log exactly once and
 * every unacknowledged one fully there (record, event, key) or fully absent; retried with the same
 * key on a new worker, each lands exactly once.
 */
let db: TestDatabase;
let token: string;
const agents = Array.from({ length: 12 }, () => randomUUID());
const stuck = randomUUID();
/** Agents whose writes hold the worker's transaction slots while the group forms behind them. */
const holders = [randomUUID(), randomUUID()];

beforeAll(async () => {
  db = await createTestDatabase('api_crash');
  await db.pool.query(
    `INSERT INTO agents (id, org_id, name) SELECT a, $2, 'crash' FROM unnest($1::uuid[]) AS a`,
    [[...agents, stuck, ...holders], randomUUID()],
  );
  token = await tokenFor(['*'], 'crash-test');
});
afterAll(async () => db?.drop());

const startWorker = async (port: number) =>
  startService('api', {
    port,
    env: {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_CHANNEL_PREFIX: uniqueChannelPrefix(),
      SYNC_JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMIT_PER_SECOND: '0',
    },
  });

interface Write {
  key: string;
  id: string;
  agentId: string;
}

const send = (worker: ServiceProcess, w: Write) =>
  fetch(`${worker.url}/api/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'idempotency-key': w.key,
    },
    body: JSON.stringify({ id: w.id, agent_id: w.agentId, role: 'assistant', content: `m ${w.key}` }),
  });

async function blockedCommits(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%sync_commit%'`,
  );
  return rows[0]!.n;
}

async function runningCommits(): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
     WHERE datname = current_database() AND state <> 'idle' AND query LIKE '%sync_commit%' AND pid <> pg_backend_pid()`,
  );
  return rows[0]!.n;
}

/** What the database holds for one write: its record, its events and its idempotency row. */
async function stateOf(w: Write) {
  const { rows } = await db.pool.query<{
    records: number;
    events: number;
    event_ids: string[];
    keys: number;
  }>(
    `SELECT (SELECT count(*) FROM messages WHERE id = $1)::int AS records,
            (SELECT count(*) FROM sync_events WHERE mutation_id = $2)::int AS events,
            (SELECT count(*) FROM sync_events WHERE model_id = $1)::int AS event_ids,
            (SELECT count(*) FROM idempotency_keys WHERE principal = 'crash-test' AND key = $2)::int AS keys`,
    [w.id, w.key],
  );
  return rows[0]!;
}

/** Every scope's log is 1..last_id without gaps or duplicates, and every message has its insert event. */
async function expectLogsWhole(): Promise<void> {
  const { rows } = await db.pool.query<{ scope: string; n: number; max: number; last_id: number }>(
    `SELECT s.scope, count(e.id)::int AS n, coalesce(max(e.id), 0)::int AS max, s.last_id::int AS last_id
     FROM sync_scopes s LEFT JOIN sync_events e ON e.scope = s.scope GROUP BY s.scope, s.last_id`,
  );
  for (const row of rows) expect(row, row.scope).toMatchObject({ n: row.last_id, max: row.last_id });
  const { rows: orphans } = await db.pool.query(
    `SELECT m.id FROM messages m WHERE NOT EXISTS (
       SELECT 1 FROM sync_events e WHERE e.model_id = m.id AND e.action = 'insert' AND e.scope = 'agent:' || m.agent_id)`,
  );
  expect(orphans).toEqual([]);
}

it('loses, doubles and splits nothing when the worker is SIGKILLed while a group commits', async () => {
  const port = await freePort();
  let worker = await startWorker(port);
  const locker: PoolClient = await db.pool.connect();
  const holdLocker: PoolClient = await db.pool.connect();
  const writes: Write[] = [];
  const acked = new Set<string>();
  const inFlight: Promise<void>[] = [];
  const fire = (agentId: string) => {
    const w = { key: `k-${randomUUID()}`, id: randomUUID(), agentId };
    writes.push(w);
    inFlight.push(
      send(worker, w).then(
        async (res) => {
          if (res.status === 201) acked.add(w.key);
          else throw new Error(`unexpected ${res.status}: ${await res.text()}`);
        },
        () => {}, // the worker died before it answered
      ),
    );
  };
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM agents WHERE id = $1 FOR UPDATE', [stuck]);
    await holdLocker.query('BEGIN');
    await holdLocker.query('SELECT 1 FROM agents WHERE id = ANY($1) FOR UPDATE', [holders]);
    // Two writes take the worker's two transaction slots and wait on holdLocker's row locks.
    for (const agentId of holders) fire(agentId);
    await waitUntil(async () => (await blockedCommits()) === 2, 60_000, 'both transaction slots wait');
    // The group: every write queues behind the two held transactions (none can start its own).
    const plan = [...agents, stuck, ...agents.slice(0, 6), stuck];
    for (const agentId of plan) fire(agentId);
    await waitUntil(
      async () => (await readMetric(worker, 'sync_commit_queue_length')) === plan.length,
      60_000,
      'the group queues',
    );
    // Let the two through: the queue becomes one transaction, whose member for `stuck` waits on
    // the row lock after the members before it have written.
    await holdLocker.query('ROLLBACK');
    await waitUntil(
      async () => (await blockedCommits()) > 0 && acked.size >= 2,
      60_000,
      'a group waits mid-commit',
    );
    // The precondition, checked directly: only the two holders are answered, nothing waits in
    // the queue and one sync_commit runs in the database — so the one transaction in flight
    // carries every write of the plan, and it is stopped on the row lock, uncommitted.
    expect(acked.size).toBe(2);
    expect(await readMetric(worker, 'sync_commit_queue_length')).toBe(0);
    expect(await runningCommits()).toBe(1);
    expect(await blockedCommits()).toBe(1);
    await worker.kill('SIGKILL');
    await locker.query('ROLLBACK');
    await Promise.all(inFlight);
    await waitUntil(async () => (await runningCommits()) === 0, 20_000, 'the orphaned group ended');

    expect(acked.size).toBeGreaterThanOrEqual(2);
    expect(acked.size).toBeLessThan(writes.length);
    for (const w of writes) {
      const state = await stateOf(w);
      if (acked.has(w.key)) expect(state, w.key).toEqual({ records: 1, events: 1, event_ids: 1, keys: 1 });
      else
        expect([
          { records: 0, events: 0, event_ids: 0, keys: 0 },
          { records: 1, events: 1, event_ids: 1, keys: 1 },
        ]).toContainEqual(state);
    }
    await expectLogsWhole();
    // The group was one transaction: its writes share one fate, and when Postgres committed the
    // orphan, their events (inserted once for the group, outside the members' subtransactions)
    // carry one transaction id.
    const group = writes.slice(holders.length).map((w) => w.key);
    const { rows: fates } = await db.pool.query<{ events: number; xids: number }>(
      `SELECT count(*)::int AS events, count(DISTINCT xmin::text)::int AS xids
       FROM sync_events WHERE mutation_id = ANY($1)`,
      [group],
    );
    expect([
      { events: 0, xids: 0 },
      { events: group.length, xids: 1 },
    ]).toContainEqual(fates[0]);

    // Retried with the same keys on a new worker, every write ends up there exactly once.
    worker = await startWorker(port);
    for (const w of writes.filter((x) => !acked.has(x.key))) expect((await send(worker, w)).status).toBe(201);
    for (const w of writes)
      expect(await stateOf(w)).toEqual({ records: 1, events: 1, event_ids: 1, keys: 1 });
    await expectLogsWhole();
  } finally {
    locker.release();
    holdLocker.release();
    await worker.kill('SIGKILL');
  }
}, 120_000);
