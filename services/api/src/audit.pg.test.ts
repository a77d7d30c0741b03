import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { type SyncEvent, WriteResult } from '@openagents/sync-protocol';
import { type Bus, createMemoryBus, type PoolClient } from '@openagents/sync-server-kit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { createDeltaReader } from '../../delta/src/index';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * Audit (who wrote what) and stable order (created_sync_id) on the write path.
 */
let h: ApiHarness;
const lines: Record<string, unknown>[] = [];
const published: SyncEvent[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const inner = createMemoryBus();
  const bus: Bus = {
    ...inner,
    async publish(message) {
      published.push(...message.events);
      await inner.publish(message);
    },
  };
  h = await createApiHarness({ label: 'api_audit', bus, log: pino({ level: 'info' }, sink) });
});
afterAll(async () => h?.close());

describe('audit', () => {
  it('logs each write with its request id, subject and record ids, and keeps the subject in the log table only', async () => {
    const token = await tokenFor(['*'], 'auditor-7');
    const org = randomUUID();
    const res = await h.request(
      'POST',
      '/api/agents',
      { org_id: org, name: 'Audited' },
      { token, headers: { 'x-request-id': 'req-audit-1' } },
    );
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe('req-audit-1');
    const { data } = WriteResult.parse(await res.json());
    const line = lines.find((l) => l.requestId === 'req-audit-1');
    expect(line).toMatchObject({ sub: 'auditor-7', recordIds: [data.id], status: 201, route: '/api/:model' });

    const patched = await h.request('PATCH', `/api/agents/${data.id}`, { name: 'Renamed' }, { token });
    const generated = patched.headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.find((l) => l.requestId === generated)).toMatchObject({
      sub: 'auditor-7',
      recordIds: [data.id],
    });

    // Refused and unrouted requests carry their id too (it is set before the handler runs).
    const refused = await h.request(
      'PATCH',
      `/api/agents/${data.id}`,
      { name: 5 },
      {
        token,
        headers: { 'x-request-id': 'req-audit-bad' },
      },
    );
    expect(refused.status).toBe(400);
    expect(refused.headers.get('x-request-id')).toBe('req-audit-bad');
    const unrouted = await h.request(
      'POST',
      '/api/nowhere/1/2/3',
      {},
      { token, headers: { 'x-request-id': 'req-404' } },
    );
    expect(unrouted.status).toBe(404);
    expect(unrouted.headers.get('x-request-id')).toBe('req-404');

    const { rows } = await h.db.pool.query(
      'SELECT action, actor FROM sync_events WHERE scope = $1 ORDER BY id',
      [`org:${org}`],
    );
    expect(rows).toEqual([
      { action: 'insert', actor: 'auditor-7' },
      { action: 'update', actor: 'auditor-7' },
    ]);
    const broadcast = published.filter((e) => e.scope === `org:${org}`);
    expect(broadcast).toHaveLength(2);
    for (const event of broadcast) expect(event).not.toHaveProperty('actor');
    const delta = await h.db.pool.query('SELECT count(*)::int AS n FROM sync_events WHERE actor IS NULL');
    expect(delta.rows[0].n).toBe(0);
  });
});

describe('stable order', () => {
  it('gives each record the id of its insert event, in the response, the event and the bootstrap', async () => {
    const agent = await h.createAgent();
    const scope = `agent:${agent.id}`;
    const res = await h.request('POST', '/api/mutations', {
      mutations: Array.from({ length: 5 }, (_, i) => ({
        model: 'Message',
        action: 'insert',
        data: { agent_id: agent.id, role: 'user', content: `m${i}` },
      })),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: WriteResult[] };
    expect(results.map((r) => [r.data.created_sync_id, r.syncId])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [n, n]),
    );

    const events = published.filter((e) => e.scope === scope && e.action === 'insert');
    expect(events.map((e) => [e.id, e.data?.created_sync_id])).toEqual([1, 2, 3, 4, 5].map((n) => [n, n]));

    const snapshot = await createDeltaReader({ pool: h.db.pool }).bootstrap(scope);
    const byId = new Map(results.map((r) => [r.data.id, r.syncId]));
    const messages = snapshot.models.Message as { id: string; created_sync_id: number }[];
    expect(messages).toHaveLength(5);
    for (const m of messages) expect(m.created_sync_id).toBe(byId.get(m.id));

    // created_at is the write's own clock_timestamp(): distinct for writes of one transaction.
    const { rows } = await h.db.pool.query<{ n: number }>(
      'SELECT count(DISTINCT created_at)::int AS n FROM messages WHERE agent_id = $1',
      [agent.id],
    );
    expect(rows[0]!.n).toBe(5);
  });

  it('keeps created_sync_id in commit order across a group of concurrent creates', async () => {
    const agent = await h.createAgent();
    await h.createMessage(agent.id);
    const locker: PoolClient = await h.db.pool.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`agent:${agent.id}`]);
      const pending = Array.from({ length: 6 }, (_, i) =>
        h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: `g${i}` }),
      );
      // One is held on the head lock in Postgres, the other five wait in the worker's queue.
      while ((await h.metric('sync_commit_queue_length')) !== 5) await new Promise((r) => setTimeout(r, 10));
      await locker.query('COMMIT');
      const answers = await Promise.all(pending.map(async (p) => WriteResult.parse(await (await p).json())));
      for (const a of answers) expect(a.data.created_sync_id).toBe(a.syncId);
    } finally {
      locker.release();
    }
    const { rows } = await h.db.pool.query(
      `SELECT m.created_sync_id, e.id FROM messages m JOIN sync_events e
         ON e.model_id = m.id AND e.action = 'insert' AND e.scope = 'agent:' || m.agent_id
       WHERE m.agent_id = $1`,
      [agent.id],
    );
    expect(rows).toHaveLength(7);
    for (const row of rows) expect(row.created_sync_id).toBe(row.id);
  });
});
