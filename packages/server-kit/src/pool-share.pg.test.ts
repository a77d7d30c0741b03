import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { createPool, type Pool } from './db';
import { sharePool } from './pool-share';

const LOCK = 4_242;
const APP = 'pool-share-test';

describe('a share of a pool', () => {
  let db: TestDatabase;
  let pool: Pool;
  beforeAll(async () => {
    db = await createTestDatabase('pool_share');
    pool = createPool({ url: db.url, max: 4, applicationName: APP });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  /** Statements of the pool waiting on a lock right now. */
  const lockWaiters = async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE application_name = $1 AND wait_event_type = 'Lock'`,
      [APP],
    );
    return rows[0]!.n;
  };

  it('holds at most its size of the connections however many queries wait, and leaves the rest to the pool', async () => {
    const share = sharePool(pool, 2);
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [LOCK]);
      // Ten reads that block on the lock while holding their connection, through the share.
      const reads = Array.from({ length: 10 }, () =>
        share.query('SELECT pg_advisory_xact_lock_shared($1)', [LOCK]),
      );
      await expect.poll(lockWaiters).toBe(2);
      // The pool still answers (without the share's bound the reads would hold all four and this
      // would wait for a connection until the pool's 5 s checkout timeout).
      expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // And the share still holds only its two: the other eight wait in its line, not in Postgres.
      expect(await lockWaiters()).toBe(2);
      await holder.query('SELECT pg_advisory_unlock($1)', [LOCK]);
      expect(await Promise.all(reads)).toHaveLength(10);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
  });

  it('counts a checked-out client until it is released, once however often release is called', async () => {
    const share = sharePool(pool, 1);
    const first = await share.connect();
    let secondArrived = false;
    const second = share.connect().then((client) => {
      secondArrived = true;
      return client;
    });
    // A query through the pool itself gets its turn while the share's second checkout waits.
    await pool.query('SELECT 1');
    expect(secondArrived).toBe(false);
    first.release();
    const client = await second;
    expect(secondArrived).toBe(true);
    expect(() => client.release()).not.toThrow();
    // pg refuses a second release; the share's slot was given back only once.
    expect(() => client.release()).toThrow();
    const [a, b] = [share.connect(), share.connect()];
    const one = await a;
    let bArrived = false;
    void b.then(() => {
      bArrived = true;
    });
    await pool.query('SELECT 1');
    expect(bArrived).toBe(false);
    one.release();
    (await b).release();
  });

  it('refuses the callback forms, and leaves ending the pool to its owner', async () => {
    const share = sharePool(pool, 1);
    await expect(
      (share.query as (...a: unknown[]) => Promise<unknown>)('SELECT 1', () => {}),
    ).rejects.toThrow(TypeError);
    await share.end();
    expect((await share.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    expect(share.totalCount).toBe(pool.totalCount);
  });
});
