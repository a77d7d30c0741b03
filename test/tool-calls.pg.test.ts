import { randomUUID } from 'node:crypto';
import { createApiApp } from '@openagents/sync-api-service';
import { createDeltaReader } from '@openagents/sync-delta-service';
import {
  MODEL_REGISTRY,
  type ModelsSnapshot,
  recordSchemas,
  type SyncEvent,
  ToolCall,
  WriteResult,
} from '@openagents/sync-protocol';
import { createLogger, createMemoryBus, createRegistry } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/pg';
import { testAuth, tokenFor } from './support/tokens';

/**
 * ToolCall end to end through the real services: written by the API, served by the delta
 * service's bootstrap (paged by its JSON size) and log, both exactly as the API answered.
 */
let db: TestDatabase;
let api: ReturnType<typeof createApiApp>;
let token: string;

beforeAll(async () => {
  db = await createTestDatabase('tool_calls');
  const log = createLogger({ name: 'tool-calls', level: 'silent' });
  api = createApiApp({
    pool: db.pool,
    bus: createMemoryBus(),
    auth: testAuth,
    log,
    registry: createRegistry('tool-calls', { defaultMetrics: false }),
    config: { RATE_LIMIT_PER_SECOND: 0 },
  });
  token = await tokenFor(['*']);
});
afterAll(async () => db?.drop());

async function write(method: string, path: string, body: unknown): Promise<WriteResult> {
  const res = await api.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return WriteResult.parse(await res.json());
}

function replay(events: readonly SyncEvent[]): Record<string, unknown>[] {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of events) {
    if (e.model !== 'ToolCall') continue;
    if (e.action === 'insert') rows.set(e.model_id, { ...e.data });
    else if (e.action === 'update') rows.set(e.model_id, { ...rows.get(e.model_id), ...e.data });
    else if (e.action === 'delete') rows.delete(e.model_id);
  }
  return [...rows.values()];
}

describe('every model, from its one declaration', () => {
  it('the API answer, the insert event and the bootstrap record carry exactly the declared columns', async () => {
    const org = randomUUID();
    const agent = await write('POST', '/api/agents', { org_id: org, name: 'Scout' });
    const agentId = String(agent.data.id);
    const message = await write('POST', '/api/messages', { agent_id: agentId, role: 'user', content: 'hi' });
    const bodies: Record<string, Record<string, unknown>> = {
      Payment: { org_id: org, agent_id: agentId, amount: 5, currency: 'EUR' },
      CodeChange: { agent_id: agentId, path: 'a.ts', diff: '+1' },
      ReasoningStep: { agent_id: agentId, message_id: message.data.id, content: 'think' },
      ToolCall: { agent_id: agentId, message_id: message.data.id, name: 'search', result: { n: 1 } },
    };
    const answers = new Map<string, WriteResult>([
      ['Agent', agent],
      ['Message', message],
    ]);
    for (const [name, body] of Object.entries(bodies)) {
      answers.set(name, await write('POST', `/api/${MODEL_REGISTRY.get(name)!.path}`, body));
    }
    const reader = createDeltaReader({ pool: db.pool });
    for (const model of MODEL_REGISTRY.models) {
      const answer = answers.get(model.name)!;
      const columns = [...model.columns].sort();
      expect(Object.keys(answer.data).sort(), model.name).toEqual(columns);
      const snap = await reader.bootstrap(answer.scope);
      const served = (snap.models as ModelsSnapshot)[model.name as keyof ModelsSnapshot].find(
        (r) => r.id === answer.data.id,
      )!;
      expect(served, model.name).toEqual(answer.data);
      const log = await reader.delta(answer.scope, 0);
      expect(log.events.find((e) => e.model_id === answer.data.id)!.data, model.name).toEqual(answer.data);
      // The record schema derived from the same declaration accepts it.
      expect(
        recordSchemas[model.name as keyof typeof recordSchemas].safeParse(served).success,
        model.name,
      ).toBe(true);
    }
  });
});

describe('ToolCall in bootstrap and delta', () => {
  it('serves ToolCalls in the agent scope exactly as the API wrote them, paged by size, and the log replays to them', async () => {
    const org = randomUUID();
    const agent = await write('POST', '/api/agents', { org_id: org, name: 'Scout' });
    const agentId = String(agent.data.id);
    const scope = `agent:${agentId}`;
    const message = await write('POST', '/api/messages', {
      agent_id: agentId,
      role: 'assistant',
      content: '',
    });
    const latest = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < 12; i++) {
      const call = await write('POST', '/api/tool-calls', {
        agent_id: agentId,
        message_id: message.data.id,
        name: `tool_${i}`,
        arguments: { i, text: 'x'.repeat(400), nested: { list: [i, null, true] } },
      });
      latest.set(String(call.data.id), call.data);
    }
    const first = [...latest.keys()][0]!;
    const done = await write('PATCH', `/api/tool-calls/${first}`, { status: 'succeeded', result: { ok: 1 } });
    latest.set(first, done.data);

    // Small pages: the JSON arguments count in the page's size, so the snapshot takes several.
    const reader = createDeltaReader({ pool: db.pool, bootstrapPageBytes: 2000 });
    const pages = [await reader.bootstrap(scope)];
    while (pages.at(-1)!.nextCursor)
      pages.push(await reader.bootstrap(scope, { cursor: pages.at(-1)!.nextCursor! }));
    expect(pages.length).toBeGreaterThan(2);
    const served = pages.flatMap((p) => (p.models as ModelsSnapshot).ToolCall);
    expect(served.map((r) => ToolCall.parse(r).id).sort()).toEqual([...latest.keys()].sort());
    for (const record of served) expect(record).toEqual(latest.get(String(record.id)));
    expect(pages[0]!.models.Message).toHaveLength(1);

    // Org scopes hold no ToolCalls, but every snapshot names the model.
    const orgSnap = await reader.bootstrap(`org:${org}`);
    expect(orgSnap.models.ToolCall).toEqual([]);

    const log = await reader.delta(scope, 0);
    expect(log.hasMore).toBe(false);
    const replayed = replay(log.events).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    expect(replayed).toEqual([...latest.values()].sort((a, b) => String(a.id).localeCompare(String(b.id))));
  });
});
