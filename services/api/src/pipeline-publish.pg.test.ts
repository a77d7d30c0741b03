import { WriteResult } from '@openagents/sync-protocol';
import { type Bus, type BusMessage, createMemoryBus } from '@openagents/sync-server-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../test/api-harness';

/**
 * The commit pipeline frees a transaction's slot (and its scopes) once the statement has
 * committed and the group's publishes are handed to the bus, not once the bus acknowledged them:
 * the next group of the same scope commits while the previous publish is still in flight, and the
 * publishes of a scope still leave in commit order. Made deterministic with a bus whose publish
 * the test holds, and a pipeline of depth 1 (one transaction at a time).
 */
let h: ApiHarness;
const published: BusMessage[] = [];
let gate: Promise<void> | null = null;

beforeAll(async () => {
  const inner = createMemoryBus();
  const bus: Bus = {
    ...inner,
    async publish(message) {
      published.push(message);
      const held = gate;
      gate = null;
      if (held) await held;
      await inner.publish(message);
    },
  };
  h = await createApiHarness({ label: 'api_pipeline_publish', bus, config: { WRITE_PIPELINE_DEPTH: 1 } });
});
afterAll(async () => h?.close());

async function until(check: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10));
}

describe('commit pipeline and the bus', () => {
  it('commits the next group of a scope while the previous publish is unacknowledged, publishing in order', async () => {
    const agent = await h.createAgent();
    const scope = `agent:${agent.id}`;
    let open!: () => void;
    gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const first = h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'a' });
    await until(() => published.some((m) => m.scope === scope));

    const second = h.request('POST', '/api/messages', { agent_id: agent.id, role: 'user', content: 'b' });
    // Committed with the first publish still held (with the slot kept until the publish was
    // acknowledged, this never happens and the test times out).
    await until(async () => (await h.events(scope)).length === 2);
    const secondAnswer = await second;
    expect(secondAnswer.status).toBe(201);
    expect(WriteResult.parse(await secondAnswer.json()).syncId).toBe(2);

    open();
    const firstAnswer = await first;
    expect(firstAnswer.status).toBe(201);
    expect(WriteResult.parse(await firstAnswer.json()).syncId).toBe(1);
    expect(published.filter((m) => m.scope === scope).map((m) => m.events.map((e) => e.id))).toEqual([
      [1],
      [2],
    ]);
  });
});
