import { randomUUID } from 'node:crypto';
import { WriteResult } from '@openagents/sync-protocol';
import { createLogger, createMemoryBus, createRegistry, type Pool } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAuth, tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';
import { createApiApp } from './app';

/**
 * Once a group's statement has committed, nothing may make the pipeline run its members again:
 * a member whose answer needs one more read (a delete refused by a foreign key re-reads the
 * record's scope) and whose read fails gets that failure alone; the others keep the answers of
 * their committed writes. Made deterministic with a pipeline of depth 1 held on a scope lock,
 * and a pool whose re-read of a record's scope fails.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_commit_after' });
});
afterAll(async () => h?.close());

/** The harness database's pool, except that reading a record's scope (`... AS scope FROM ...`) fails. */
function failingScopeReads(pool: Pool): Pool {
  return new Proxy(pool, {
    get(target, prop) {
      if (prop === 'query') {
        return (query: unknown, ...rest: unknown[]) =>
          typeof query === 'string' && query.includes(' AS scope FROM ')
            ? Promise.reject(new Error('scope re-read failed'))
            : (target.query as (...args: unknown[]) => unknown)(query, ...rest);
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

describe('after COMMIT', () => {
  it('answers a member whose re-read fails with that failure, and every other member as committed, once', async () => {
    const app = createApiApp({
      pool: failingScopeReads(h.db.pool),
      bus: createMemoryBus(),
      auth: testAuth,
      log: createLogger({ name: 'commit-after', level: 'silent' }),
      registry: createRegistry('commit-after', { defaultMetrics: false }),
      config: { RATE_LIMIT_PER_SECOND: 0, WRITE_PIPELINE_DEPTH: 1 },
    });
    const token = await tokenFor(['*']);
    const send = (method: string, path: string, body?: unknown) =>
      app.request(path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const held = await h.createAgent();
    await h.createMessage(held.id); // the scope's head row exists, so the test can lock it
    const referenced = await h.createAgent();
    await h.createMessage(referenced.id);
    const other = await h.createAgent();
    const id = randomUUID();

    const locker = await h.db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${held.id}`]);
      const first = send('POST', '/api/messages', { agent_id: held.id, role: 'user', content: 'held' });
      await until(async () => {
        const { rowCount } = await h.db.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        return (rowCount ?? 0) > 0;
      });
      // Both wait for the one slot and then commit together: a create, and a delete the foreign
      // key refuses (the agent still has a message), whose scope re-read fails.
      const create = send('POST', '/api/messages', { id, agent_id: other.id, role: 'user', content: 'once' });
      const refused = send('DELETE', `/api/agents/${referenced.id}`);
      await until(async () => {
        const text = await (await app.request('/metrics')).text();
        return /^sync_commit_queue_length\S* 2$/m.test(text);
      });
      await locker.query('COMMIT');
      expect((await first).status).toBe(201);
      const created = await create;
      expect(created.status).toBe(201);
      expect(WriteResult.parse(await created.json()).data.id).toBe(id);
      expect((await refused).status).toBe(500);
    } finally {
      locker.release();
    }
    expect((await h.events(`agent:${other.id}`)).map((e) => [e.action, e.model_id])).toEqual([
      ['insert', id],
    ]);
    const { rows } = await h.db.pool.query('SELECT 1 FROM agents WHERE id = $1', [referenced.id]);
    expect(rows).toHaveLength(1);
  });
});
