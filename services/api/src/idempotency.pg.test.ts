import { randomUUID } from 'node:crypto';
import { ErrorBody } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

let h: ApiHarness;
let agent: { id: string; org_id: string };

beforeAll(async () => {
  h = await createApiHarness({ label: 'api_idem' });
  agent = await h.createAgent();
});
afterAll(async () => h?.close());

const key = () => `k-${randomUUID()}`;
const withKey = (k: string) => ({ headers: { 'idempotency-key': k } });

describe('single-record calls with Idempotency-Key', () => {
  it('answers a retry with the first result, writes once, and carries the key on the event', async () => {
    const k = key();
    const body = { agent_id: agent.id, role: 'user', content: 'once' };
    const replaysBefore = await h.metric('sync_idempotent_replays_total');
    const first = await h.request('POST', '/api/messages', body, withKey(k));
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const firstBody = await first.json();
    const countsAfterFirst = await h.counts();

    // Key order differs: the canonical body is the same request.
    const retry = await h.request(
      'POST',
      '/api/messages',
      { content: 'once', role: 'user', agent_id: agent.id },
      withKey(k),
    );
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(firstBody);
    expect(await h.counts()).toEqual(countsAfterFirst);

    const { rows } = await h.db.pool.query('SELECT mutation_id FROM sync_events WHERE model_id = $1', [
      (firstBody as { data: { id: string } }).data.id,
    ]);
    expect(rows).toEqual([{ mutation_id: k }]);
    expect(await h.metric('sync_idempotent_replays_total')).toBe(replaysBefore + 1);
    expect(
      await h.metric('sync_mutations_total', { model: 'Message', action: 'insert', result: 'replayed' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('409 idempotency_conflict when the key comes back with a different body, path or method', async () => {
    const k = key();
    const first = await h.request('POST', '/api/agents', { org_id: agent.org_id, name: 'one' }, withKey(k));
    expect(first.status).toBe(201);
    const id = ((await first.json()) as { data: { id: string } }).data.id;
    const before = await h.counts();
    const attempts = [
      () => h.request('POST', '/api/agents', { org_id: agent.org_id, name: 'two' }, withKey(k)),
      () =>
        h.request('POST', '/api/payments', { org_id: agent.org_id, amount: 1, currency: 'USD' }, withKey(k)),
      () => h.request('PATCH', `/api/agents/${id}`, { name: 'one' }, withKey(k)),
      () => h.request('DELETE', `/api/agents/${id}`, undefined, withKey(k)),
    ];
    for (const attempt of attempts) {
      const res = await attempt();
      expect(res.status).toBe(409);
      const error = ErrorBody.parse(await res.json()).error;
      expect(error.code).toBe('idempotency_conflict');
      expect(error.details).toEqual([{ path: 'Idempotency-Key', message: expect.any(String) }]);
    }
    expect(await h.counts()).toEqual(before);
  });

  it('replays updates and deletes (a retried delete is not a 404)', async () => {
    const msg = await h.createMessage(agent.id);
    const kUpdate = key();
    const u1 = await h.request('PATCH', `/api/messages/${msg.id}`, { content: 'v2' }, withKey(kUpdate));
    expect(u1.status).toBe(200);
    const u1Body = await u1.json();
    await h.request('PATCH', `/api/messages/${msg.id}`, { content: 'v3' });
    const u2 = await h.request('PATCH', `/api/messages/${msg.id}`, { content: 'v2' }, withKey(kUpdate));
    expect(u2.status).toBe(200);
    expect(await u2.json()).toEqual(u1Body);
    const { rows } = await h.db.pool.query('SELECT content FROM messages WHERE id = $1', [msg.id]);
    expect(rows[0].content).toBe('v3');

    const kDelete = key();
    const d1 = await h.request('DELETE', `/api/messages/${msg.id}`, undefined, withKey(kDelete));
    expect(d1.status).toBe(200);
    const before = await h.counts();
    const d2 = await h.request('DELETE', `/api/messages/${msg.id}`, undefined, withKey(kDelete));
    expect(d2.status).toBe(200);
    expect(await d2.json()).toEqual(await d1.json());
    expect(await h.counts()).toEqual(before);
  });

  it('namespaces keys by token subject', async () => {
    const k = key();
    const alice = await tokenFor(['*'], 'alice');
    const bob = await tokenFor(['*'], 'bob');
    const a = await h.request(
      'POST',
      '/api/agents',
      { org_id: agent.org_id, name: 'alice' },
      { ...withKey(k), token: alice },
    );
    const b = await h.request(
      'POST',
      '/api/agents',
      { org_id: agent.org_id, name: 'bob' },
      { ...withKey(k), token: bob },
    );
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
  });

  it('does not keep the key of a failed request: the corrected retry goes through', async () => {
    const k = key();
    const missing = await h.request(
      'POST',
      '/api/messages',
      { agent_id: randomUUID(), role: 'user', content: 'x' },
      withKey(k),
    );
    expect(missing.status).toBe(404);
    const { rowCount } = await h.db.pool.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [k]);
    expect(rowCount).toBe(0);
    const ok = await h.request(
      'POST',
      '/api/messages',
      { agent_id: agent.id, role: 'user', content: 'x' },
      withKey(k),
    );
    expect(ok.status).toBe(201);
  });

  it('writes exactly once when duplicates race each other', async () => {
    const k = key();
    const before = await h.counts();
    const body = { agent_id: agent.id, role: 'assistant', content: 'raced' };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => h.request('POST', '/api/messages', body, withKey(k))),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(8).fill(201));
    const bodies = await Promise.all(responses.map((r) => r.json()));
    for (const b of bodies) expect(b).toEqual(bodies[0]);
    expect(responses.filter((r) => r.headers.get('idempotent-replayed') === null)).toHaveLength(1);
    const after = await h.counts();
    expect(after.messages).toBe(before.messages + 1);
    expect(after.sync_events).toBe(before.sync_events + 1);
    expect(after.idempotency_keys).toBe(before.idempotency_keys + 1);
  });

  it('racing a key with different bodies: one write, the others conflict or replay', async () => {
    const k = key();
    const before = await h.counts();
    const responses = await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        h.request('POST', '/api/agents', { org_id: agent.org_id, name }, withKey(k)),
      ),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409]);
    const after = await h.counts();
    expect(after.agents).toBe(before.agents + 1);
    expect(after.sync_events).toBe(before.sync_events + 1);
  });
});

describe('batch entries with mutationId', () => {
  it('a whole-batch retry returns the original results and writes nothing', async () => {
    const batch = {
      mutations: [
        { mutationId: key(), model: 'Agent', action: 'insert', data: { org_id: agent.org_id, name: 'b1' } },
        {
          mutationId: key(),
          model: 'Message',
          action: 'insert',
          data: { agent_id: agent.id, role: 'user', content: 'b' },
        },
      ],
    };
    const first = await h.request('POST', '/api/mutations', batch);
    expect(first.status).toBe(200);
    const firstBody = await first.json();
    const before = await h.counts();
    const retry = await h.request('POST', '/api/mutations', batch);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(await retry.json()).toEqual(firstBody);
    expect(await h.counts()).toEqual(before);
    const events = await h.events(`agent:${agent.id}`);
    expect(events.filter((e) => e.mutation_id === batch.mutations[1]!.mutationId)).toHaveLength(1);
  });

  it('replays the keyed entries and applies the new ones of a grown batch', async () => {
    const first = {
      mutationId: key(),
      model: 'Agent',
      action: 'insert',
      data: { org_id: agent.org_id, name: 'g1' },
    };
    const r1 = await h.request('POST', '/api/mutations', { mutations: [first] });
    const [firstResult] = ((await r1.json()) as { results: unknown[] }).results;
    const before = await h.counts();
    const second = {
      mutationId: key(),
      model: 'Agent',
      action: 'insert',
      data: { org_id: agent.org_id, name: 'g2' },
    };
    const r2 = await h.request('POST', '/api/mutations', { mutations: [first, second] });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('idempotent-replayed')).toBeNull();
    const { results } = (await r2.json()) as { results: { syncId: number }[] };
    expect(results[0]).toEqual(firstResult);
    expect(results[1]!.syncId).toBeGreaterThan((firstResult as { syncId: number }).syncId);
    const after = await h.counts();
    expect(after.agents).toBe(before.agents + 1);
    expect(after.sync_events).toBe(before.sync_events + 1);
  });

  it('409 naming the entry when a mutationId comes back with other data; nothing of the batch is written', async () => {
    const k = key();
    await h.request('POST', '/api/mutations', {
      mutations: [
        { mutationId: k, model: 'Agent', action: 'insert', data: { org_id: agent.org_id, name: 'x' } },
      ],
    });
    const before = await h.counts();
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'Agent', action: 'insert', data: { org_id: agent.org_id, name: 'fresh' } },
        { mutationId: k, model: 'Agent', action: 'insert', data: { org_id: agent.org_id, name: 'y' } },
      ],
    });
    expect(res.status).toBe(409);
    const error = ErrorBody.parse(await res.json()).error;
    expect(error.code).toBe('idempotency_conflict');
    expect(error.details).toEqual([{ path: 'mutations.1.mutationId', message: expect.any(String) }]);
    expect(await h.counts()).toEqual(before);
  });

  it('leaves no key behind when the batch fails', async () => {
    const k = key();
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        { mutationId: k, model: 'Agent', action: 'insert', data: { org_id: agent.org_id, name: 'x' } },
        { model: 'Agent', action: 'delete', id: randomUUID() },
      ],
    });
    expect(res.status).toBe(404);
    const { rowCount } = await h.db.pool.query('SELECT 1 FROM idempotency_keys WHERE key = $1', [k]);
    expect(rowCount).toBe(0);
  });
});
