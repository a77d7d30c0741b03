import { randomUUID } from 'node:crypto';
import { MutationBatchResult, SyncEvent, WriteResult } from '@openagents/sync-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_writes' });
});
afterAll(async () => h?.close());

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

describe('create', () => {
  it('creates each of the five models with 201 {data, scope, syncId} and one insert event', async () => {
    const org = randomUUID();
    const agentRes = await h.request('POST', '/api/agents', { org_id: org, name: 'Scout' });
    expect(agentRes.status).toBe(201);
    const agent = WriteResult.parse(await agentRes.json());
    expect(agent.scope).toBe(`org:${org}`);
    expect(agent.syncId).toBe(1);
    expect(agent.data).toMatchObject({ org_id: org, name: 'Scout', status: 'idle' });
    expect(typeof agent.data.created_at).toBe('string');
    const agentId = String(agent.data.id);

    const msgRes = await h.request('POST', '/api/messages', {
      agent_id: agentId,
      role: 'user',
      content: 'hello',
    });
    expect(msgRes.status).toBe(201);
    const msg = WriteResult.parse(await msgRes.json());
    expect(msg).toMatchObject({
      scope: `agent:${agentId}`,
      syncId: 1,
      data: { role: 'user', content: 'hello' },
    });

    const payRes = await h.request('POST', '/api/payments', {
      org_id: org,
      agent_id: agentId,
      amount: 1250,
      currency: 'EUR',
    });
    expect(payRes.status).toBe(201);
    expect(await json(payRes)).toMatchObject({
      scope: `org:${org}`,
      syncId: 2,
      data: { amount: 1250, currency: 'EUR', status: 'pending', agent_id: agentId },
    });

    const ccRes = await h.request('POST', '/api/code-changes', {
      agent_id: agentId,
      path: 'src/a.ts',
      diff: '+x',
    });
    expect(ccRes.status).toBe(201);
    expect(await json(ccRes)).toMatchObject({
      scope: `agent:${agentId}`,
      syncId: 2,
      data: { status: 'proposed' },
    });

    const stepRes = await h.request('POST', '/api/reasoning-steps', {
      agent_id: agentId,
      message_id: msg.data.id,
      content: 'think',
    });
    expect(stepRes.status).toBe(201);
    expect(await json(stepRes)).toMatchObject({
      scope: `agent:${agentId}`,
      syncId: 3,
      data: { message_id: msg.data.id },
    });

    const events = (await h.events(`agent:${agentId}`)).map((e) => e.model);
    expect(events).toEqual(['Message', 'CodeChange', 'ReasoningStep']);
    const [first] = await h.events(`org:${org}`);
    expect(first).toMatchObject({
      id: 1,
      model: 'Agent',
      model_id: agentId,
      action: 'insert',
      mutation_id: null,
    });
    expect(first!.data).toEqual(agent.data);
  });

  it('keeps a client-supplied id (case-normalised) and stores SQL-ish and unicode text verbatim', async () => {
    const agent = await h.createAgent();
    const id = randomUUID();
    const content = '\'); DROP TABLE messages; -- \\x00 ☃ 𝄞 "quoted" $1';
    const res = await h.request('POST', '/api/messages', {
      id: id.toUpperCase(),
      agent_id: agent.id,
      role: 'tool',
      content,
    });
    expect(res.status).toBe(201);
    const body = WriteResult.parse(await res.json());
    expect(body.data.id).toBe(id);
    const { rows } = await h.db.pool.query('SELECT content FROM messages WHERE id = $1', [id]);
    expect(rows[0].content).toBe(content);
  });

  it('accepts a Payment without an agent and a ReasoningStep without a message', async () => {
    const agent = await h.createAgent();
    const pay = await h.request('POST', '/api/payments', {
      org_id: agent.org_id,
      amount: -5,
      currency: 'USD',
    });
    expect(pay.status).toBe(201);
    expect(await json(pay)).toMatchObject({ data: { agent_id: null, amount: -5 } });
    const step = await h.request('POST', '/api/reasoning-steps', { agent_id: agent.id, content: '' });
    expect(step.status).toBe(201);
    expect(await json(step)).toMatchObject({ data: { message_id: null } });
  });
});

describe('update', () => {
  it('changes only the given fields, bumps updated_at, and logs just those fields', async () => {
    const agent = await h.createAgent();
    const created = WriteResult.parse(
      await (
        await h.request('POST', '/api/code-changes', { agent_id: agent.id, path: 'a.ts', diff: 'd1' })
      ).json(),
    );
    const res = await h.request('PATCH', `/api/code-changes/${created.data.id}`, { status: 'applied' });
    expect(res.status).toBe(200);
    const updated = WriteResult.parse(await res.json());
    expect(updated.scope).toBe(`agent:${agent.id}`);
    expect(updated.syncId).toBe(created.syncId + 1);
    expect(updated.data).toMatchObject({
      path: 'a.ts',
      diff: 'd1',
      status: 'applied',
      created_at: created.data.created_at,
    });
    expect(Date.parse(String(updated.data.updated_at))).toBeGreaterThanOrEqual(
      Date.parse(String(created.data.updated_at)),
    );
    const events = await h.events(`agent:${agent.id}`);
    expect(events.at(-1)).toMatchObject({ action: 'update', model: 'CodeChange' });
    expect(events.at(-1)!.data).toEqual({ status: 'applied', updated_at: updated.data.updated_at });
  });

  it('is last-writer-wins per field: two writers of different fields both keep theirs', async () => {
    const agent = await h.createAgent();
    const [a, b] = await Promise.all([
      h.request('PATCH', `/api/agents/${agent.id}`, { name: 'Renamed' }),
      h.request('PATCH', `/api/agents/${agent.id}`, { status: 'running' }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const { rows } = await h.db.pool.query('SELECT name, status FROM agents WHERE id = $1', [agent.id]);
    expect(rows[0]).toEqual({ name: 'Renamed', status: 'running' });
    const events = await h.events(`org:${agent.org_id}`);
    expect(events.map((e) => e.id)).toEqual([1, 2, 3]);
  });

  it('can set and clear a ReasoningStep message_id of the same agent', async () => {
    const agent = await h.createAgent();
    const msg = await h.createMessage(agent.id);
    const step = WriteResult.parse(
      await (await h.request('POST', '/api/reasoning-steps', { agent_id: agent.id, content: 'x' })).json(),
    );
    const set = await h.request('PATCH', `/api/reasoning-steps/${step.data.id}`, { message_id: msg.id });
    expect(set.status).toBe(200);
    expect(await json(set)).toMatchObject({ data: { message_id: msg.id } });
    const clear = await h.request('PATCH', `/api/reasoning-steps/${step.data.id}`, { message_id: null });
    expect(clear.status).toBe(200);
    expect(await json(clear)).toMatchObject({ data: { message_id: null } });
  });
});

describe('delete', () => {
  it('answers {data:{id}, scope, syncId} and logs a delete event with null data', async () => {
    const agent = await h.createAgent();
    const msg = await h.createMessage(agent.id);
    const res = await h.request('DELETE', `/api/messages/${msg.id}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ data: { id: msg.id }, scope: `agent:${agent.id}`, syncId: 2 });
    const events = await h.events(`agent:${agent.id}`);
    expect(events[1]).toMatchObject({ id: 2, action: 'delete', model_id: msg.id, data: null });
    const { rowCount } = await h.db.pool.query('SELECT 1 FROM messages WHERE id = $1', [msg.id]);
    expect(rowCount).toBe(0);
  });

  it('deletes an agent once nothing references it', async () => {
    const agent = await h.createAgent();
    const res = await h.request('DELETE', `/api/agents/${agent.id}`);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ scope: `org:${agent.org_id}`, syncId: 2 });
  });
});

describe('POST /api/mutations', () => {
  it('applies a multi-scope batch atomically and answers results in entry order', async () => {
    const org = randomUUID();
    const agentId = randomUUID();
    const msgId = randomUUID();
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'Agent', action: 'insert', data: { id: agentId, org_id: org, name: 'B' } },
        {
          model: 'Message',
          action: 'insert',
          id: msgId,
          data: { agent_id: agentId, role: 'user', content: 'q' },
        },
        { model: 'Message', action: 'update', id: msgId, data: { content: 'q2' } },
        { model: 'Agent', action: 'update', id: agentId, data: { status: 'running' } },
        {
          model: 'ReasoningStep',
          action: 'insert',
          data: { agent_id: agentId, message_id: msgId, content: 's' },
        },
        {
          model: 'Payment',
          action: 'insert',
          data: { org_id: org, agent_id: agentId, amount: 1, currency: 'USD' },
        },
      ],
    });
    expect(res.status).toBe(200);
    const { results } = MutationBatchResult.parse(await res.json());
    expect(results.map((r) => [r.scope, r.syncId])).toEqual([
      [`org:${org}`, 1],
      [`agent:${agentId}`, 1],
      [`agent:${agentId}`, 2],
      [`org:${org}`, 2],
      [`agent:${agentId}`, 3],
      [`org:${org}`, 3],
    ]);
    expect(results[2]!.data).toMatchObject({ id: msgId, content: 'q2' });
    const agentEvents = (await h.events(`agent:${agentId}`)).map((e) =>
      SyncEvent.parse({ ...e, mutationId: e.mutation_id, created_at: 'x' }),
    );
    expect(agentEvents.map((e) => e.action)).toEqual(['insert', 'update', 'insert']);
  });

  it('can delete in a batch', async () => {
    const agent = await h.createAgent();
    const msg = await h.createMessage(agent.id);
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'Message', action: 'delete', id: msg.id },
        { model: 'Agent', action: 'delete', id: agent.id },
      ],
    });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      results: [
        { data: { id: msg.id }, scope: `agent:${agent.id}`, syncId: 2 },
        { data: { id: agent.id }, scope: `org:${agent.org_id}`, syncId: 2 },
      ],
    });
  });
});

describe('scopes and tokens', () => {
  it('lets a token write exactly the scopes its patterns cover', async () => {
    const { tokenFor } = await import('../../../test/support/tokens');
    const org = randomUUID();
    const orgToken = await tokenFor([`org:${org}`, 'agent:*']);
    const res = await h.request('POST', '/api/agents', { org_id: org, name: 'mine' }, { token: orgToken });
    expect(res.status).toBe(201);
    const agentId = String(((await res.json()) as WriteResult).data.id);
    const msg = await h.request(
      'POST',
      '/api/messages',
      { agent_id: agentId, role: 'user', content: 'ok' },
      { token: orgToken },
    );
    expect(msg.status).toBe(201);
  });
});
