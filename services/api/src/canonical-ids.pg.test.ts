import { randomUUID } from 'node:crypto';
import { ErrorBody, type ModelName, scopeOf, WriteResult } from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * Uuids are accepted in any case and stored lowercase; the scope of every write comes from the
 * stored row. So no spelling of an id can put an event in a scope other than its record's.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_canonical' });
});
afterAll(async () => h?.close());

const upper = (id: string) => id.toUpperCase();
/** A spelling of `id` with the case of each letter chosen by `mask`. */
const spell = (id: string, mask: boolean[]) =>
  [...id].map((ch, i) => (mask[i % mask.length] ? ch.toUpperCase() : ch)).join('');

/** The stored row of a record, as the tables hold it. */
async function stored(table: string, id: string): Promise<Record<string, unknown>> {
  const { rows } = await h.db.pool.query(`SELECT * FROM ${table} WHERE id = $1`, [id]);
  return rows[0];
}

/** The scope the log put a record's events in, each event once. */
async function eventScopes(id: string): Promise<string[]> {
  const { rows } = await h.db.pool.query<{ scope: string }>(
    'SELECT scope FROM sync_events WHERE model_id = $1 ORDER BY scope, id',
    [id],
  );
  return rows.map((r) => r.scope);
}

async function created(res: Response): Promise<WriteResult> {
  expect(res.status, await res.clone().text()).toBe(201);
  return WriteResult.parse(await res.json());
}

describe('uuids in capitals', () => {
  it('lands every model in its lowercase scope, whatever the case of id, org_id, agent_id, message_id', async () => {
    const org = randomUUID();
    const agent = await created(
      await h.request('POST', '/api/agents', { id: upper(randomUUID()), org_id: upper(org), name: 'A' }),
    );
    const agentId = agent.data.id as string;
    expect(agent.scope).toBe(`org:${org}`);
    expect(agentId).toBe(agentId.toLowerCase());
    expect(agent.data.org_id).toBe(org);

    const message = await created(
      await h.request('POST', '/api/messages', {
        id: upper(randomUUID()),
        agent_id: upper(agentId),
        role: 'user',
        content: 'hi',
      }),
    );
    const payment = await created(
      await h.request('POST', '/api/payments', {
        id: spell(randomUUID(), [true, false]),
        org_id: spell(org, [false, true]),
        agent_id: upper(agentId),
        amount: 5,
        currency: 'EUR',
      }),
    );
    const change = await created(
      await h.request('POST', '/api/code-changes', {
        id: upper(randomUUID()),
        agent_id: spell(agentId, [true, true, false]),
        path: 'a.ts',
        diff: '+1',
      }),
    );
    const step = await created(
      await h.request('POST', '/api/reasoning-steps', {
        id: upper(randomUUID()),
        agent_id: upper(agentId),
        message_id: upper(message.data.id as string),
        content: 'because',
      }),
    );
    const results: [ModelName, WriteResult, string][] = [
      ['Message', message, `agent:${agentId}`],
      ['Payment', payment, `org:${org}`],
      ['CodeChange', change, `agent:${agentId}`],
      ['ReasoningStep', step, `agent:${agentId}`],
    ];
    for (const [model, result, scope] of results) {
      expect(result.scope, model).toBe(scope);
      for (const field of ['id', 'org_id', 'agent_id', 'message_id']) {
        const value = result.data[field];
        if (typeof value === 'string') expect(value, `${model}.${field}`).toBe(value.toLowerCase());
      }
      expect(await eventScopes(result.data.id as string)).toEqual([scope]);
    }
    expect(await eventScopes(agentId)).toEqual([`org:${org}`]);
  });

  it('updates and deletes by an id in capitals (path and batch) in the record’s own scope', async () => {
    const agent = await h.createAgent();
    const message = await h.createMessage(agent.id);
    const patched = await h.request('PATCH', `/api/messages/${upper(message.id)}`, { content: 'edited' });
    expect(patched.status).toBe(200);
    expect(WriteResult.parse(await patched.json()).scope).toBe(`agent:${agent.id}`);
    const batch = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'Message', action: 'update', id: upper(message.id), data: { content: 'again' } },
        { model: 'Message', action: 'delete', id: spell(message.id, [true, false, false]) },
        {
          model: 'Message',
          action: 'insert',
          id: upper(message.id),
          data: { id: message.id, agent_id: upper(agent.id), role: 'user', content: 're-made' },
        },
      ],
    });
    expect(batch.status, await batch.clone().text()).toBe(200);
    const { rows } = await h.db.pool.query(
      'SELECT action, scope FROM sync_events WHERE model_id = $1 ORDER BY id',
      [message.id],
    );
    expect(rows).toEqual(
      ['insert', 'update', 'update', 'delete', 'insert'].map((action) => ({
        action,
        scope: `agent:${agent.id}`,
      })),
    );
  });

  it('reads a token’s org and agent scopes in canonical form', async () => {
    const org = randomUUID();
    const token = await tokenFor([`org:${upper(org)}`]);
    const res = await h.request('POST', '/api/agents', { org_id: org, name: 'B' }, { token });
    expect((await created(res)).scope).toBe(`org:${org}`);
    const other = await h.request('POST', '/api/agents', { org_id: randomUUID(), name: 'C' }, { token });
    expect(other.status).toBe(403);
  });

  it('property: no spelling of the uuids puts an event in a scope other than its record’s', async () => {
    const agent = await h.createAgent();
    const message = await h.createMessage(agent.id);
    const mask = fc.array(fc.boolean(), { minLength: 1, maxLength: 36 });
    const cases = fc.record({
      model: fc.constantFrom<ModelName>(
        'Agent',
        'Message',
        'Payment',
        'CodeChange',
        'ReasoningStep',
        'ToolCall',
      ),
      id: mask,
      scopeField: mask,
      ref: mask,
      batch: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(cases, async (c) => {
        const id = randomUUID();
        const org = agent.org_id;
        const bodies: Record<ModelName, Record<string, unknown>> = {
          Agent: { org_id: spell(org, c.scopeField), name: 'P' },
          Message: { agent_id: spell(agent.id, c.scopeField), role: 'user', content: 'p' },
          Payment: {
            org_id: spell(org, c.scopeField),
            agent_id: spell(agent.id, c.ref),
            amount: 1,
            currency: 'USD',
          },
          CodeChange: { agent_id: spell(agent.id, c.scopeField), path: 'p', diff: 'p' },
          ReasoningStep: {
            agent_id: spell(agent.id, c.scopeField),
            message_id: spell(message.id, c.ref),
            content: 'p',
          },
          ToolCall: {
            agent_id: spell(agent.id, c.scopeField),
            message_id: spell(message.id, c.ref),
            name: 'search',
          },
        };
        const data = { ...bodies[c.model], id: spell(id, c.id) };
        const res = c.batch
          ? await h.request('POST', '/api/mutations', {
              mutations: [{ model: c.model, action: 'insert', data }],
            })
          : await h.request('POST', `/api/${PATHS[c.model]}`, data);
        expect(res.status, await res.clone().text()).toBe(c.batch ? 200 : 201);
        const row = await stored(TABLE[c.model], id);
        const scope = scopeOf(c.model, { org_id: row.org_id, agent_id: row.agent_id });
        expect(await eventScopes(id)).toEqual([scope]);
      }),
      { numRuns: 40 },
    );
  });
});

const PATHS: Record<ModelName, string> = {
  Agent: 'agents',
  Message: 'messages',
  Payment: 'payments',
  CodeChange: 'code-changes',
  ReasoningStep: 'reasoning-steps',
  ToolCall: 'tool-calls',
};
const TABLE: Record<ModelName, string> = {
  Agent: 'agents',
  Message: 'messages',
  Payment: 'payments',
  CodeChange: 'code_changes',
  ReasoningStep: 'reasoning_steps',
  ToolCall: 'tool_calls',
};

describe('idempotent replay after the scope check', () => {
  it('answers a stored response only to a token that still holds its scope', async () => {
    const org = randomUUID();
    const key = `k-${randomUUID()}`;
    const body = { org_id: org, name: 'kept' };
    const granted = await tokenFor([`org:${org}`], 'replayer');
    const first = await h.request('POST', '/api/agents', body, {
      token: granted,
      headers: { 'idempotency-key': key },
    });
    expect(first.status).toBe(201);
    const before = await h.counts();

    const revoked = await tokenFor([`org:${randomUUID()}`], 'replayer');
    const refused = await h.request('POST', '/api/agents', body, {
      token: revoked,
      headers: { 'idempotency-key': key },
    });
    expect(refused.status).toBe(403);
    const error = ErrorBody.parse(await refused.json()).error;
    expect(error.code).toBe('forbidden');
    expect(JSON.stringify(error)).not.toContain('kept');
    expect(refused.headers.get('idempotent-replayed')).toBeNull();

    expect(await h.counts()).toEqual(before);

    const again = await h.request('POST', '/api/agents', body, {
      token: granted,
      headers: { 'idempotency-key': key },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toEqual(await first.json());
  });

  it('refuses a batch replay to a token without the scope, writing nothing of the batch', async () => {
    const org = randomUUID();
    const granted = await tokenFor([`org:${org}`], 'batch-replayer');
    const entry = {
      mutationId: `m-${randomUUID()}`,
      model: 'Agent',
      action: 'insert',
      data: { org_id: org, name: 'x' },
    };
    expect(
      (await h.request('POST', '/api/mutations', { mutations: [entry] }, { token: granted })).status,
    ).toBe(200);
    const before = await h.counts();
    const elsewhere = randomUUID();
    const revoked = await tokenFor([`org:${elsewhere}`], 'batch-replayer');
    const res = await h.request(
      'POST',
      '/api/mutations',
      { mutations: [{ model: 'Agent', action: 'insert', data: { org_id: elsewhere, name: 'y' } }, entry] },
      { token: revoked },
    );
    expect(res.status).toBe(403);
    expect(ErrorBody.parse(await res.json()).error.details).toEqual([
      expect.objectContaining({ path: 'mutations.1.mutationId', scope: `org:${org}` }),
    ]);
    expect(await h.counts()).toEqual(before);
  });
});
