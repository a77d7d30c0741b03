import { randomUUID } from 'node:crypto';
import {
  jsonProblem,
  MAX_JSON_DEPTH,
  MutationBatchResult,
  ToolCall,
  WriteResult,
} from '@openagents/sync-protocol';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenFor } from '../../../test/support/tokens';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * ToolCall, the model added through the registry (packages/protocol/src/models.ts): its routes,
 * validation, JSON fields, references and events come from its one declaration.
 */
let h: ApiHarness;
beforeAll(async () => {
  h = await createApiHarness({ label: 'api_tool_calls' });
});
afterAll(async () => h?.close());

const toolCalls = async () =>
  (await h.db.pool.query('SELECT count(*)::int AS n FROM tool_calls')).rows[0].n as number;

function nested(depth: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < depth; i++) value = { next: value };
  return value;
}

describe('ToolCall writes', () => {
  it('creates with the declared defaults, updates status and result, and logs one event each', async () => {
    const agent = await h.createAgent();
    const message = await h.createMessage(agent.id);
    const args = { query: 'weather in Paris', options: { units: 'metric', days: [1, 2] }, exact: true };
    const res = await h.request('POST', '/api/tool-calls', {
      agent_id: agent.id,
      message_id: message.id,
      name: 'search',
      arguments: args,
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const created = WriteResult.parse(await res.json());
    expect(created.scope).toBe(`agent:${agent.id}`);
    const record = ToolCall.parse(created.data);
    expect(record).toMatchObject({ name: 'search', arguments: args, result: null, status: 'pending' });
    expect(record.created_sync_id).toBe(created.syncId);

    const patch = await h.request('PATCH', `/api/tool-calls/${record.id}`, {
      status: 'succeeded',
      result: { temperature: 21.5, summary: 'sunny' },
    });
    expect(patch.status, await patch.clone().text()).toBe(200);
    expect((await patch.json()).data).toMatchObject({ status: 'succeeded', result: { temperature: 21.5 } });

    const cleared = await h.request('PATCH', `/api/tool-calls/${record.id}`, {
      result: null,
      status: 'failed',
    });
    expect((await cleared.json()).data).toMatchObject({ status: 'failed', result: null });
    const { rows } = await h.db.pool.query(
      'SELECT result IS NULL AS sql_null FROM tool_calls WHERE id = $1',
      [record.id],
    );
    expect(rows[0].sql_null).toBe(true);

    const events = await h.events(`agent:${agent.id}`);
    const mine = events.filter((e) => e.model === 'ToolCall');
    expect(mine.map((e) => e.action)).toEqual(['insert', 'update', 'update']);
    expect(mine[0]!.data).toEqual(created.data);
    expect(Object.keys(mine[1]!.data as object).sort()).toEqual(['result', 'status', 'updated_at']);

    const del = await h.request('DELETE', `/api/tool-calls/${record.id}`);
    expect(del.status).toBe(200);
    expect(await toolCalls()).toBe(0);
  });

  it('takes ToolCalls in a batch with the other models, all or nothing', async () => {
    const agent = await h.createAgent();
    const id = randomUUID();
    const res = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'Message', action: 'insert', data: { agent_id: agent.id, role: 'assistant', content: '' } },
        {
          model: 'ToolCall',
          action: 'insert',
          id,
          data: { agent_id: agent.id, name: 'run', arguments: [1] },
        },
        { model: 'ToolCall', action: 'update', id, data: { status: 'running' } },
      ],
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const { results } = MutationBatchResult.parse(await res.json());
    expect(results[2]!.data).toMatchObject({ id, status: 'running', arguments: [1] });

    const before = await toolCalls();
    const bad = await h.request('POST', '/api/mutations', {
      mutations: [
        { model: 'ToolCall', action: 'insert', data: { agent_id: agent.id, name: 'ok' } },
        { model: 'ToolCall', action: 'insert', data: { agent_id: agent.id, name: 'bad', status: 'done' } },
      ],
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.details).toEqual([
      expect.objectContaining({ path: 'mutations.1.data.status' }),
    ]);
    expect(await toolCalls()).toBe(before);
  });
});

describe('ToolCall validation', () => {
  it('rejects wrong fields, enum values, scope and immutable changes with the field named', async () => {
    const agent = await h.createAgent();
    const cases: [unknown, string][] = [
      [{ agent_id: agent.id, name: 'x', status: 'done' }, 'status'],
      [{ agent_id: agent.id, name: '' }, 'name'],
      [{ agent_id: agent.id, name: 'x'.repeat(201) }, 'name'],
      [{ agent_id: agent.id, name: 'x', bogus: 1 }, 'bogus'],
      [{ agent_id: agent.id }, 'name'],
      [{ agent_id: agent.id, name: 'x', arguments: null }, 'arguments'],
      [{ agent_id: agent.id, name: 'x', arguments: { a: 'nul\u0000' } }, 'arguments'],
      [{ agent_id: agent.id, name: 'x', arguments: { '\ud800': 1 } }, 'arguments'],
      [{ agent_id: agent.id, name: 'x', result: nested(MAX_JSON_DEPTH + 1) }, 'result'],
      [{ agent_id: 'not-a-uuid', name: 'x' }, 'agent_id'],
    ];
    for (const [body, path] of cases) {
      const res = await h.request('POST', '/api/tool-calls', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      const details = (await res.json()).error.details as { path: string; message: string }[];
      expect(details.map((d) => d.path)).toContain(path);
    }
    const deep = await h.request('POST', '/api/tool-calls', {
      agent_id: agent.id,
      name: 'x',
      result: nested(MAX_JSON_DEPTH + 1),
    });
    expect((await deep.json()).error.details[0].message).toBe(
      `must be JSON nested at most ${MAX_JSON_DEPTH} levels deep`,
    );

    const call = WriteResult.parse(
      await (await h.request('POST', '/api/tool-calls', { agent_id: agent.id, name: 'x' })).json(),
    );
    const scopeChange = await h.request('PATCH', `/api/tool-calls/${call.data.id}`, {
      agent_id: randomUUID(),
    });
    expect(scopeChange.status).toBe(400);
    expect((await scopeChange.json()).error.details).toEqual([
      { path: 'agent_id', message: "agent_id decides the record's scope and cannot be changed" },
    ]);
    const immutable = await h.request('PATCH', `/api/tool-calls/${call.data.id}`, {
      message_id: randomUUID(),
    });
    expect(immutable.status).toBe(400);
    expect((await immutable.json()).error.details).toEqual([
      { path: 'message_id', message: 'message_id cannot be changed' },
    ]);
    const append = await h.request('POST', `/api/tool-calls/${call.data.id}/append`, {
      field: 'name',
      offset: 1,
      text: 'y',
    });
    expect(append.status).toBe(400);
    expect((await append.json()).error.details).toEqual([
      { path: 'field', message: 'ToolCall has no field to append to' },
    ]);
  });

  it('checks message_id: it must exist and belong to the same agent', async () => {
    const agent = await h.createAgent();
    const other = await h.createAgent();
    const foreign = await h.createMessage(other.id);
    const missing = await h.request('POST', '/api/tool-calls', {
      agent_id: agent.id,
      message_id: randomUUID(),
      name: 'x',
    });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.details[0].path).toBe('message_id');
    const wrong = await h.request('POST', '/api/tool-calls', {
      agent_id: agent.id,
      message_id: foreign.id,
      name: 'x',
    });
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error.details).toEqual([
      { path: 'message_id', message: 'must be a message of the same agent' },
    ]);
  });

  it('refuses a ToolCall in a scope the token does not grant', async () => {
    const agent = await h.createAgent();
    const token = await tokenFor([`agent:${randomUUID()}`]);
    const res = await h.request('POST', '/api/tool-calls', { agent_id: agent.id, name: 'x' }, { token });
    expect(res.status).toBe(403);
  });

  it('stores any JSON argument exactly, or refuses it with a 400 naming the field, never a 500', async () => {
    const agent = await h.createAgent();
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: MAX_JSON_DEPTH + 3 }),
        fc.boolean(),
        async (value, unicode) => {
          const args = unicode ? { text: String.fromCharCode(0xd800), value } : value;
          const res = await h.request('POST', '/api/tool-calls', {
            agent_id: agent.id,
            name: 'p',
            arguments: args,
          });
          const problem = jsonProblem(args) ?? (args === null ? 'null' : undefined);
          if (problem) {
            expect(res.status).toBe(400);
            expect((await res.json()).error.details[0].path).toBe('arguments');
          } else {
            expect(res.status, await res.clone().text()).toBe(201);
            expect((await res.json()).data.arguments).toEqual(JSON.parse(JSON.stringify(args)));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
