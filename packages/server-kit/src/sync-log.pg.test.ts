import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/pg';
import { inTransaction } from './db';
import { appendEvents, type NewEvent, pruneEvents, readEvents, readHead, readHeads } from './sync-log';

const newEvent = (): NewEvent => ({
  model: 'Agent',
  model_id: randomUUID(),
  action: 'insert',
  data: { name: 'a' },
  mutationId: null,
});

describe('sync log', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('synclog');
  });
  afterAll(() => db.drop());

  it('numbers each scope 1, 2, 3 independently', async () => {
    const a = await inTransaction(db.pool, (c) => appendEvents(c, 'org:a', [newEvent(), newEvent()]));
    const b = await inTransaction(db.pool, (c) => appendEvents(c, 'org:b', [newEvent()]));
    const a2 = await inTransaction(db.pool, (c) => appendEvents(c, 'org:a', [newEvent()]));
    expect(a.map((e) => e.id)).toEqual([1, 2]);
    expect(b.map((e) => e.id)).toEqual([1]);
    expect(a2.map((e) => e.id)).toEqual([3]);
    expect((await readEvents(db.pool, 'org:a', 1, 10)).map((e) => e.id)).toEqual([2, 3]);
    expect(await readHeads(db.pool, ['org:a', 'org:b', 'org:none'])).toEqual(
      new Map([
        ['org:a', 3],
        ['org:b', 1],
        ['org:none', 0],
      ]),
    );
  });

  it('reuses the ids of a rolled-back transaction, leaving no gap', async () => {
    await expect(
      inTransaction(db.pool, async (c) => {
        await appendEvents(c, 'org:rb', [newEvent()]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const ok = await inTransaction(db.pool, (c) => appendEvents(c, 'org:rb', [newEvent()]));
    expect(ok[0]?.id).toBe(1);
  });

  it('never makes id N+1 visible before N, under concurrent writers and readers', async () => {
    const scope = 'org:race';
    const writers = Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 25; i++) {
        await inTransaction(db.pool, async (c) => {
          const events = await appendEvents(c, scope, [newEvent()]);
          // Hold the lock a little so commits interleave with readers.
          if (i % 5 === 0) await c.query('SELECT pg_sleep(0.002)');
          return events;
        });
      }
    });
    let cursor = 0;
    let done = false;
    const reader = (async () => {
      while (!done || cursor < 200) {
        // Read `done` before the query: only a read whose snapshot began
        // after every writer committed may end the loop when it is empty.
        const writersFinished = done;
        const events = await readEvents(db.pool, scope, cursor, 1000);
        for (const e of events) {
          expect(e.id).toBe(cursor + 1);
          cursor = e.id;
        }
        if (writersFinished && events.length === 0) break;
      }
    })();
    await Promise.all(writers);
    done = true;
    await reader;
    expect(cursor).toBe(200);
  });

  it('prunes a prefix per scope and records pruned_through', async () => {
    await inTransaction(db.pool, (c) => appendEvents(c, 'org:prune', [newEvent(), newEvent(), newEvent()]));
    await db.pool.query(
      `UPDATE sync_events SET created_at = now() - interval '40 days' WHERE scope = 'org:prune' AND id <= 2`,
    );
    let deleted = 0;
    for (
      let n = await pruneEvents(db.pool, new Date(Date.now() - 30 * 86400_000));
      n > 0;
      n = await pruneEvents(db.pool, new Date(Date.now() - 30 * 86400_000))
    ) {
      deleted += n;
    }
    expect(deleted).toBe(2);
    expect(await readHead(db.pool, 'org:prune')).toEqual({ lastId: 3, prunedThrough: 2 });
    expect((await readEvents(db.pool, 'org:prune', 0, 10)).map((e) => e.id)).toEqual([3]);
  });
});
