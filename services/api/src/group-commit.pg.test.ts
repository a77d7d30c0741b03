import { randomUUID } from 'node:crypto';
import { ErrorBody, WriteResult } from '@openagents/sync-protocol';
import type { PoolClient } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, type SendRequest } from '../test/api-harness';

/**
 * Group commit, made deterministic: a first create of a scope is held in Postgres on the scope's
 * head row, which the test locks from outside. Creates of that scope sent meanwhile wait in the
 * worker's lane; releasing the lock lets them through as one transaction.
 */
let h: ApiHarness;
let send: SendRequest;

beforeAll(async () => {
  h = await createApiHarness({ label: 'api_group' });
  send = h.withConfig({ WRITE_GROUP_MAX: 32 });
});
afterAll(async () => h?.close());

const message = (agentId: string, content: string) => ({ agent_id: agentId, role: 'user', content });

/** Runs `first` (held on the scope lock), then `queued` once `expectQueued` creates wait in the lane. */
async function whileScopeHeld(
  scope: string,
  first: () => Promise<Response>,
  queued: () => Promise<Response>[],
  expectQueued: number,
): Promise<{ first: Response; rest: Response[] }> {
  const locker: PoolClient = await h.db.pool.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [scope]);
    const held = first();
    await until(async () => (await waitingOnLock()) > 0);
    const rest = queued();
    await until(async () => (await h.metric('sync_commit_queue_length')) === expectQueued);
    await locker.query('COMMIT');
    return { first: await held, rest: await Promise.all(rest) };
  } finally {
    locker.release();
  }
}

async function waitingOnLock(): Promise<number> {
  const { rows } = await h.db.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return rows[0]!.n;
}

async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

async function commitSizes(): Promise<{ sum: number; count: number }> {
  const { values } = await h.registry.getSingleMetric('sync_commit_mutations')!.get();
  const pick = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `sync_commit_mutations_${suffix}`)
      ?.value ?? 0;
  return { sum: pick('sum'), count: pick('count') };
}

describe('group commit per scope', () => {
  it('commits the creates queued behind a running one in one transaction, each with its own answer and event', async () => {
    const agent = await h.createAgent();
    await h.createMessage(agent.id);
    const other = await h.createAgent();
    const before = await commitSizes();
    const { first, rest } = await whileScopeHeld(
      `agent:${agent.id}`,
      () => send('POST', '/api/messages', message(agent.id, 'first')),
      () => [
        ...Array.from({ length: 8 }, (_, i) => send('POST', '/api/messages', message(agent.id, `m${i}`))),
        // Another scope is never held up by this one: it commits while the lock is still held.
        send('POST', '/api/messages', message(other.id, 'elsewhere')),
      ],
      8,
    );
    expect(first.status).toBe(201);
    expect(rest.map((r) => r.status)).toEqual(Array(9).fill(201));
    const results = await Promise.all(rest.map(async (r) => WriteResult.parse(await r.json())));
    expect(results.slice(0, 8).map((r) => [r.data.content, r.syncId])).toEqual(
      Array.from({ length: 8 }, (_, i) => [`m${i}`, i + 3]),
    );
    expect(results[8]).toMatchObject({ scope: `agent:${other.id}`, syncId: 1 });
    const after = await commitSizes();
    // first (1) + elsewhere (1) + the queued eight (8), in three transactions.
    expect(after.count - before.count).toBe(3);
    expect(after.sum - before.sum).toBe(10);
    expect((await h.events(`agent:${agent.id}`)).map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('gives every member of a failed group the answer it would have had alone', async () => {
    const agent = await h.createAgent();
    await h.createMessage(agent.id);
    const taken = await h.createMessage(agent.id);
    const key = `k-${randomUUID()}`;
    await h.request('POST', '/api/messages', message(agent.id, 'keyed'), {
      headers: { 'idempotency-key': key },
    });
    const before = await h.counts();
    const { rest } = await whileScopeHeld(
      `agent:${agent.id}`,
      () => send('POST', '/api/messages', message(agent.id, 'first')),
      () => [
        send('POST', '/api/messages', message(agent.id, 'fine 1')),
        send('POST', '/api/messages', { ...message(agent.id, 'dup id'), id: taken.id }),
        send('POST', '/api/reasoning-steps', {
          agent_id: agent.id,
          message_id: randomUUID(),
          content: 'no message',
        }),
        send('POST', '/api/messages', message(agent.id, 'other body'), {
          headers: { 'idempotency-key': key },
        }),
        send('POST', '/api/messages', message(agent.id, 'fine 2')),
      ],
      5,
    );
    expect(rest.map((r) => r.status)).toEqual([201, 409, 404, 409, 201]);
    const codes = await Promise.all(
      rest.slice(1, 4).map(async (r) => ErrorBody.parse(await r.json()).error.code),
    );
    expect(codes).toEqual(['conflict', 'not_found', 'idempotency_conflict']);
    const after = await h.counts();
    expect(after.messages).toBe(before.messages + 3);
    expect(after.reasoning_steps).toBe(before.reasoning_steps);
    expect(after.sync_events).toBe(before.sync_events + 3);
    expect((await h.events(`agent:${agent.id}`)).map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('never puts two requests with the same key in one transaction: one write, the same answer twice', async () => {
    const agent = await h.createAgent();
    await h.createMessage(agent.id);
    const key = `k-${randomUUID()}`;
    const before = await h.counts();
    const body = message(agent.id, 'twice');
    const { rest } = await whileScopeHeld(
      `agent:${agent.id}`,
      () => send('POST', '/api/messages', message(agent.id, 'first')),
      () => [
        send('POST', '/api/messages', body, { headers: { 'idempotency-key': key } }),
        send('POST', '/api/messages', message(agent.id, 'other')),
        send('POST', '/api/messages', body, { headers: { 'idempotency-key': key } }),
      ],
      3,
    );
    expect(rest.map((r) => r.status)).toEqual([201, 201, 201]);
    const [a, , c] = await Promise.all(rest.map((r) => r.json()));
    expect(c).toEqual(a);
    expect(rest.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
    const after = await h.counts();
    expect(after.messages).toBe(before.messages + 3);
    expect(after.idempotency_keys).toBe(before.idempotency_keys + 1);
  });
});
