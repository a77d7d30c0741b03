import { randomUUID } from 'node:crypto';
import { ErrorBody, WriteResult } from '@openagents/sync-protocol';
import type { PoolClient } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness, type SendRequest } from '../test/api-harness';

/**
 * Group commit, made deterministic: one transaction slot, and that slot held by a write that waits
 * on a scope head we lock from outside. Everything sent meanwhile queues; releasing the lock lets
 * the queue go through as one group.
 */
let h: ApiHarness;
let send: SendRequest;
let blocker: { id: string; org_id: string };

beforeAll(async () => {
  h = await createApiHarness({ label: 'api_group' });
  send = h.withConfig({ WRITE_GROUP_MAX: 32, WRITE_GROUP_IN_FLIGHT: 1 });
  blocker = await h.createAgent();
});
afterAll(async () => h?.close());

async function whileSlotHeld(
  queuedWrites: () => Promise<Response>[],
): Promise<{ first: Response; rest: Response[] }> {
  const locker: PoolClient = await h.db.pool.connect();
  try {
    await locker.query('BEGIN');
    await locker.query('SELECT 1 FROM sync_scopes WHERE scope = $1 FOR UPDATE', [`org:${blocker.org_id}`]);
    const first = send('PATCH', `/api/agents/${blocker.id}`, { name: `held ${randomUUID()}` });
    await until(async () => (await waitingOnLock()) > 0);
    const rest = queuedWrites();
    await until(async () => (await h.metric('sync_commit_queue_length')) === rest.length);
    await locker.query('COMMIT');
    return { first: await first, rest: await Promise.all(rest) };
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
  const metric = h.registry.getSingleMetric('sync_commit_mutations')!;
  const { values } = await metric.get();
  const pick = (suffix: string) =>
    values.find((v) => (v as { metricName?: string }).metricName === `sync_commit_mutations_${suffix}`)
      ?.value ?? 0;
  return { sum: pick('sum'), count: pick('count') };
}

describe('group commit', () => {
  it('commits queued writes of many scopes in one transaction, each with its own answer and event', async () => {
    const agents = await Promise.all([h.createAgent(), h.createAgent(), h.createAgent()]);
    const before = await commitSizes();
    const { first, rest } = await whileSlotHeld(() =>
      Array.from({ length: 9 }, (_, i) =>
        send('POST', '/api/messages', { agent_id: agents[i % 3]!.id, role: 'user', content: `m${i}` }),
      ),
    );
    expect(first.status).toBe(200);
    expect(rest.map((r) => r.status)).toEqual(Array(9).fill(201));
    const results = await Promise.all(rest.map(async (r) => WriteResult.parse(await r.json())));
    results.forEach((result, i) => {
      expect(result.scope).toBe(`agent:${agents[i % 3]!.id}`);
      expect(result.data.content).toBe(`m${i}`);
      expect(result.syncId).toBe(Math.floor(i / 3) + 1);
    });
    const after = await commitSizes();
    expect(after.count - before.count).toBe(2);
    expect(after.sum - before.sum).toBe(10);
    for (const agent of agents) {
      expect((await h.events(`agent:${agent.id}`)).map((e) => e.id)).toEqual([1, 2, 3]);
    }
  });

  it('gives every member of a failed group the answer it would have had alone', async () => {
    const agent = await h.createAgent();
    const narrow = await tokenFor([`org:${randomUUID()}`]);
    const dupKey = `k-${randomUUID()}`;
    await h.request(
      'POST',
      '/api/agents',
      { org_id: agent.org_id, name: 'keyed' },
      { headers: { 'idempotency-key': dupKey } },
    );
    const before = await h.counts();
    const { rest } = await whileSlotHeld(() => [
      send('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'fine 1' }),
      send('POST', '/api/messages', { agent_id: randomUUID(), role: 'user', content: 'no agent' }),
      send('POST', '/api/agents', { id: agent.id, org_id: agent.org_id, name: 'dup id' }),
      send('PATCH', `/api/agents/${agent.id}`, { name: 'not yours' }, { token: narrow }),
      send(
        'POST',
        '/api/agents',
        { org_id: agent.org_id, name: 'other body' },
        { headers: { 'idempotency-key': dupKey } },
      ),
      send('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'fine 2' }),
    ]);
    expect(rest.map((r) => r.status)).toEqual([201, 404, 409, 403, 409, 201]);
    const codes = await Promise.all(
      rest.slice(1, 5).map(async (r) => ErrorBody.parse(await r.json()).error.code),
    );
    expect(codes).toEqual(['not_found', 'conflict', 'forbidden', 'idempotency_conflict']);
    const after = await h.counts();
    expect(after.messages).toBe(before.messages + 2);
    expect(after.agents).toBe(before.agents);
    // Two messages plus the blocker's rename: exactly three new events.
    expect(after.sync_events).toBe(before.sync_events + 3);
    expect((await h.events(`agent:${agent.id}`)).map((e) => e.id)).toEqual([1, 2]);
  });

  it('never puts two requests with the same key in one group: one write, the same answer twice', async () => {
    const agent = await h.createAgent();
    const key = `k-${randomUUID()}`;
    const before = await h.counts();
    const body = { agent_id: agent.id, role: 'user', content: 'twice' };
    const { rest } = await whileSlotHeld(() => [
      send('POST', '/api/messages', body, { headers: { 'idempotency-key': key } }),
      send('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'other' }),
      send('POST', '/api/messages', body, { headers: { 'idempotency-key': key } }),
    ]);
    expect(rest.map((r) => r.status)).toEqual([201, 201, 201]);
    const [a, , c] = await Promise.all(rest.map((r) => r.json()));
    expect(c).toEqual(a);
    expect(rest.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(1);
    const after = await h.counts();
    expect(after.messages).toBe(before.messages + 2);
    expect(after.idempotency_keys).toBe(before.idempotency_keys + 1);
  });
});
